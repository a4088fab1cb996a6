"""A blob store in an S3 bucket: ``<prefix><first 2 hex>/<next 2 hex>/<digest>``.

Any S3 API works (AWS, SeaweedFS, MinIO, Ceph): the tests run the contract suite against a real
SeaweedFS server. Objects are written whole with one PUT, so a reader never sees half a blob.
"""

from __future__ import annotations

import hmac
import logging
import re

from califusion.core.errors import CaliFusionError, InvalidInput, NotFound
from califusion.storage._boto import S3Objects
from califusion.storage.blobs import check_digest, digest_of

log = logging.getLogger(__name__)

# S3's rules for new buckets: 3-63 lowercase letters, digits, dots and hyphens.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def normalize_prefix(prefix: str) -> str:
    """``prefix`` as a key prefix ("" or ending in "/"); :class:`InvalidInput` if it has empty,
    ``.`` or ``..`` segments (some S3 servers map keys onto file paths)."""
    stripped = prefix.strip("/")
    if not stripped:
        return ""
    if any(part in {"", ".", ".."} for part in stripped.split("/")):
        raise InvalidInput(f"S3 key prefix {prefix!r} has an empty, '.' or '..' segment")
    return stripped + "/"


class S3BlobStore:
    """Blobs as S3 objects. Thread-safe: one boto3 client, built once, serves every thread."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None,
        region: str | None,
        access_key: str | None,
        secret_key: str | None,
        prefix: str = "blobs/",
        create_bucket: bool = True,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
        max_attempts: int = 3,
    ) -> None:
        """``endpoint_url`` None means AWS itself; ``access_key``/``secret_key`` None means
        boto3's usual credential chain (environment, instance role). With ``create_bucket`` the
        bucket is made here if missing (the only I/O at construction). ``max_attempts`` counts
        the first try: throttling, 5xx and dropped connections are retried with backoff."""
        if not _BUCKET.fullmatch(bucket):
            raise InvalidInput(f"{bucket!r} is not a valid S3 bucket name")
        self.bucket = bucket
        self.prefix = normalize_prefix(prefix)
        self.endpoint_url = endpoint_url
        self.objects = S3Objects(
            bucket,
            endpoint_url=endpoint_url,
            region=region,
            access_key=access_key,
            secret_key=secret_key,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            max_attempts=max_attempts,
        )
        if create_bucket:
            self.objects.ensure_bucket()

    def __repr__(self) -> str:
        where = self.endpoint_url or "aws"
        return f"S3BlobStore(s3://{self.bucket}/{self.prefix} at {where})"

    def key(self, digest: str) -> str:
        """The object key of a blob (the digest is checked first: no traversal)."""
        check_digest(digest)
        return f"{self.prefix}{digest[:2]}/{digest[2:4]}/{digest}"

    def put(self, data: bytes) -> str:
        digest = digest_of(data)
        key = self.key(digest)
        if self.objects.size(key) == len(data):
            return digest  # already there; a wrong-sized object (damaged) is overwritten
        self.objects.write(key, data)
        log.info("blob stored", extra={"digest": digest, "size": len(data), "bucket": self.bucket})
        return digest

    def get(self, digest: str) -> bytes:
        key = self.key(digest)
        try:
            data = self.objects.read(key)
        except NotFound as exc:
            raise NotFound(f"no blob {digest}") from exc
        if not hmac.compare_digest(digest_of(data), digest):
            log.error("blob corrupt", extra={"digest": digest, "bucket": self.bucket})
            raise CaliFusionError(f"stored blob {digest} is corrupt")
        return data

    def exists(self, digest: str) -> bool:
        return self.objects.size(self.key(digest)) is not None

    def size(self, digest: str) -> int:
        size = self.objects.size(self.key(digest))
        if size is None:
            raise NotFound(f"no blob {digest}")
        return size
