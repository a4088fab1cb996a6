"""The few S3 calls the blob store makes, typed, with botocore's errors translated.

boto3 ships no type information, so it stays behind this module: everything it hands back is
converted to a plain type here, and every botocore (or socket) exception leaves as a
:class:`CaliFusionError` whose ``__cause__`` keeps the original for the logs.

    NotFound       the key (``NoSuchKey``, a bare 404 on HEAD) is absent
    Unavailable    cannot connect, timed out, 5xx, throttled, bucket missing, credentials refused
    PayloadTooLarge  the server refused the object's size
    CaliFusionError  anything else (a 4xx that means a bug here)
"""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any

import boto3  # type: ignore[import-untyped]
import botocore.exceptions as boto_errors  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]

from califusion.core.errors import CaliFusionError, NotFound, PayloadTooLarge, Unavailable

log = logging.getLogger(__name__)

# What an S3 call can raise: botocore's own errors, refusals, and socket errors let through.
_FAILURES = (boto_errors.BotoCoreError, boto_errors.ClientError, OSError)

_ABSENT = frozenset({"NoSuchKey", "NotFound", "404"})
_REFUSED = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "AllAccessDisabled",
        "403",
    }
)
_BUSY = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestTimeout", "503"})

# boto3 sessions are not thread-safe (clients are): the process's one session makes clients
# under this lock. Sharing it also shares its parsed service models, so a client takes
# milliseconds instead of a fifth of a second.
_SESSION_LOCK = threading.Lock()


@functools.cache
def _session() -> Any:
    return boto3.session.Session()


def _code(exc: BaseException) -> str:
    """The S3 error code of a refused request ("" for any other failure)."""
    if isinstance(exc, boto_errors.ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def translate(exc: BaseException, bucket: str, action: str) -> CaliFusionError:
    """The project's error for a failed S3 call (``action``: what was being done)."""
    if isinstance(exc, boto_errors.ClientError):
        code = _code(exc)
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        what = f"S3 {action} failed: {code or 'error'} (HTTP {status})"
        if code == "NoSuchBucket":
            return Unavailable(f"S3 bucket {bucket!r} does not exist")
        if code in _ABSENT or status == 404:
            return NotFound(f"S3 {action}: no such object")
        if code == "EntityTooLarge" or status == 413:
            return PayloadTooLarge(f"S3 refused the object's size ({code or status})")
        if code in _REFUSED or status in {401, 403}:
            return Unavailable(f"S3 refused the configured credentials ({code or status})")
        if code in _BUSY or status >= 500 or status == 429:
            return Unavailable(what)
        return CaliFusionError(what)
    if isinstance(exc, boto_errors.NoCredentialsError | boto_errors.PartialCredentialsError):
        return Unavailable("no usable S3 credentials are configured")
    if isinstance(
        exc,
        boto_errors.ConnectionError
        | boto_errors.HTTPClientError
        | boto_errors.IncompleteReadError
        | OSError,
    ):
        return Unavailable(f"S3 {action} failed: {exc}")
    return CaliFusionError(f"S3 {action} failed: {type(exc).__name__}")


class S3Objects:
    """Objects of one bucket through one boto3 client, built once: one instance serves every
    thread of the coordinator."""

    def __init__(
        self,
        bucket: str,
        *,
        endpoint_url: str | None,
        region: str | None,
        access_key: str | None,
        secret_key: str | None,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 60.0,
        max_attempts: int = 3,
        max_connections: int = 32,
    ) -> None:
        self.bucket = bucket
        self.region = region
        config = Config(
            connect_timeout=connect_timeout_s,
            read_timeout=read_timeout_s,
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            max_pool_connections=max_connections,
            # A custom endpoint (SeaweedFS, MinIO, Ceph) is usually an IP or one host name.
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            # Only what every S3 implementation accepts; blobs are SHA-256-checked on read.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        try:
            with _SESSION_LOCK:
                self._client: Any = _session().client(
                    "s3",
                    endpoint_url=endpoint_url,
                    region_name=region,
                    aws_access_key_id=access_key,
                    aws_secret_access_key=secret_key,
                    config=config,
                )
        except (boto_errors.BotoCoreError, ValueError) as exc:
            raise CaliFusionError(f"S3 client cannot be configured: {exc}") from exc

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists (another process creating it too is fine)."""
        try:
            self._client.head_bucket(Bucket=self.bucket)
            return
        except _FAILURES as exc:
            error = translate(exc, self.bucket, "HEAD bucket")
            if not isinstance(error, NotFound) and _code(exc) != "NoSuchBucket":
                raise error from exc
        options: dict[str, Any] = {}
        if self.region and self.region != "us-east-1":
            options["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._client.create_bucket(Bucket=self.bucket, **options)
        except _FAILURES as exc:
            if _code(exc) != "BucketAlreadyOwnedByYou":
                raise translate(exc, self.bucket, "CREATE bucket") from exc
        log.info("S3 bucket created", extra={"bucket": self.bucket})

    def size(self, key: str) -> int | None:
        """The object's size, or None when there is no such object."""
        try:
            head = self._client.head_object(Bucket=self.bucket, Key=key)
        except _FAILURES as exc:
            error = translate(exc, self.bucket, "HEAD")
            if isinstance(error, NotFound):
                return None
            raise error from exc
        return int(head["ContentLength"])

    def read(self, key: str) -> bytes:
        """The object's bytes; :class:`NotFound` when absent."""
        try:
            response = self._client.get_object(Bucket=self.bucket, Key=key)
            body = response["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()
        except _FAILURES as exc:
            raise translate(exc, self.bucket, "GET") from exc

    def write(self, key: str, data: bytes) -> None:
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType="application/octet-stream",
            )
        except _FAILURES as exc:
            raise translate(exc, self.bucket, "PUT") from exc
