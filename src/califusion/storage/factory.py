"""Building the configured blob store: the one place that turns settings into a backend.

``blob_url`` unset: a local folder (``blob_dir``). Set: an S3 bucket,

    s3://BUCKET[/PREFIX][?endpoint=http://127.0.0.1:8333][&region=us-east-1][&create_bucket=false]

``endpoint`` absent means AWS itself; the prefix defaults to ``blobs/``. Credentials never go in
the URL (it is logged): they come as ``access_key``/``secret_key`` (the settings fields
``s3_access_key``/``s3_secret_key``), or, when those are unset, from boto3's usual chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from califusion.core.errors import InvalidInput
from califusion.storage.blobs import BlobStore
from califusion.storage.local import LocalBlobStore

DEFAULT_PREFIX = "blobs/"
_QUERY_KEYS = frozenset({"endpoint", "region", "create_bucket"})
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class S3Location:
    """What an ``s3://`` blob URL names."""

    bucket: str
    prefix: str
    endpoint_url: str | None
    region: str | None
    create_bucket: bool


def parse_s3_url(url: str) -> S3Location:
    """The parts of an ``s3://`` blob URL; :class:`InvalidInput` for anything else."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.hostname:
        raise InvalidInput("a blob URL looks like s3://BUCKET/PREFIX?endpoint=...&region=...")
    if "@" in parts.netloc or parts.port is not None:
        raise InvalidInput(
            "a blob URL names only the bucket: credentials go in CALIFUSION_S3_ACCESS_KEY and "
            "CALIFUSION_S3_SECRET_KEY, the server in ?endpoint="
        )
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = sorted(set(query) - _QUERY_KEYS)
    if unknown or any(len(values) != 1 for values in query.values()):
        raise InvalidInput(
            f"blob URL options are endpoint, region, create_bucket, each once (got {unknown})"
        )
    options = {name: values[0] for name, values in query.items()}
    endpoint = options.get("endpoint") or None
    if endpoint is not None:
        server = urlsplit(endpoint)
        if server.scheme not in {"http", "https"} or not server.hostname or "@" in server.netloc:
            raise InvalidInput("the blob URL's endpoint is http(s)://HOST[:PORT], no credentials")
    create = _BOOLEANS.get(options.get("create_bucket", "true").lower())
    if create is None:
        raise InvalidInput("the blob URL's create_bucket is true or false")
    return S3Location(
        bucket=parts.netloc,
        prefix=parts.path.strip("/") or DEFAULT_PREFIX,
        endpoint_url=endpoint,
        region=options.get("region") or None,
        create_bucket=create,
    )


def open_blob_store(
    *,
    blob_dir: Path,
    blob_url: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
) -> BlobStore:
    """The blob store the settings name: S3 when ``blob_url`` is set, else ``blob_dir``."""
    if not blob_url:
        return LocalBlobStore(blob_dir)
    location = parse_s3_url(blob_url)
    # Imported here so that boto3 loads only in processes that use S3.
    from califusion.storage.s3 import S3BlobStore  # noqa: PLC0415

    return S3BlobStore(
        location.bucket,
        endpoint_url=location.endpoint_url,
        region=location.region,
        access_key=access_key,
        secret_key=secret_key,
        prefix=location.prefix,
        create_bucket=location.create_bucket,
    )
