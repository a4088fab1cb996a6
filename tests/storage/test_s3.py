"""S3 backend specifics: layout, damage, bucket handling, threads, and errors at the boundary.

The contract itself runs in ``test_blob_store.py``; these run against the session's SeaweedFS
server, or against a socket that refuses or a tiny HTTP server that answers with S3 errors, to
check that no botocore exception ever leaves the store.
"""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from califusion.core.errors import (
    CaliFusionError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    Unavailable,
)
from califusion.storage import digest_of
from califusion.storage.s3 import S3BlobStore, normalize_prefix

from .conftest import S3Server


def test_objects_are_sharded_under_the_prefix(s3_server: S3Server) -> None:
    store = s3_server.store("tenant/blobs")
    digest = store.put(b"x")
    key = store.key(digest)
    assert key == f"tenant/blobs/{digest[:2]}/{digest[2:4]}/{digest}"
    assert store.objects.size(key) == 1
    assert store.objects.read(key) == b"x"


def test_a_tampered_object_is_detected_on_read(s3_server: S3Server) -> None:
    store = s3_server.store()
    digest = store.put(b"original")
    store.objects.write(store.key(digest), b"tampered")  # same size: put would not notice
    with pytest.raises(CaliFusionError, match="corrupt"):
        store.get(digest)


def test_put_skips_an_existing_object_and_repairs_a_wrong_sized_one(s3_server: S3Server) -> None:
    store = s3_server.store()
    digest = store.put(b"original bytes")
    key = store.key(digest)
    store.objects.write(key, b"cut")
    assert store.put(b"original bytes") == digest
    assert store.get(digest) == b"original bytes"


def test_prefixes_keep_stores_apart(s3_server: S3Server) -> None:
    first, second = s3_server.store(), s3_server.store()
    digest = first.put(b"only in the first")
    assert not second.exists(digest)
    with pytest.raises(NotFound):
        second.get(digest)


def test_a_missing_bucket_is_created_or_reported(s3_server: S3Server) -> None:
    bucket = f"cf-new-{secrets.token_hex(4)}"
    with pytest.raises(Unavailable):  # AWS says NoSuchBucket, SeaweedFS AccessDenied
        s3_server.store(bucket=bucket, create_bucket=False).put(b"nowhere")
    created = s3_server.store(bucket=bucket)
    assert created.get(created.put(b"somewhere")) == b"somewhere"
    s3_server.store(bucket=bucket)  # creating again is fine


def test_one_store_serves_many_threads(s3_server: S3Server) -> None:
    store = s3_server.store()
    blobs = [secrets.token_bytes(1000 + i) for i in range(32)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        digests = list(pool.map(store.put, blobs + blobs))
        fetched = list(pool.map(store.get, digests))
    assert digests == [digest_of(b) for b in blobs + blobs]
    assert fetched == blobs + blobs


def test_stores_can_be_built_from_many_threads(s3_server: S3Server) -> None:
    def build_and_use(index: int) -> bytes:
        store = s3_server.store(f"threads/{index}", create_bucket=index % 2 == 0)
        return store.get(store.put(b"%d" % index))

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(build_and_use, range(6))) == [b"%d" % i for i in range(6)]


@pytest.mark.parametrize(
    ("prefix", "normalized"), [("", ""), ("/", ""), ("a", "a/"), ("/a/b/", "a/b/")]
)
def test_prefix_normalization(prefix: str, normalized: str) -> None:
    assert normalize_prefix(prefix) == normalized


@pytest.mark.parametrize("prefix", ["a//b", "../x", "a/./b", "a/.."])
def test_prefixes_with_traversal_segments_are_refused(prefix: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_prefix(prefix)


@pytest.mark.parametrize("bucket", ["", "ab", "Upper", "under_score", "-start", "x" * 64])
def test_invalid_bucket_names_are_refused(bucket: str) -> None:
    with pytest.raises(InvalidInput):
        _store("http://127.0.0.1:9", bucket=bucket)


# ---- errors at the boundary: no server, a failing server --------------------------------------


def _store(endpoint: str, bucket: str = "cf-errors", create_bucket: bool = False) -> S3BlobStore:
    return S3BlobStore(
        bucket,
        endpoint_url=endpoint,
        region="us-east-1",
        access_key="k",
        secret_key="s",
        create_bucket=create_bucket,
        connect_timeout_s=1,
        read_timeout_s=2,
        max_attempts=1,
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again when we return


def test_no_server_is_unavailable() -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(Unavailable):
        _store(endpoint, create_bucket=True)
    store = _store(endpoint)
    digest = digest_of(b"x")
    for operation in (store.get, store.exists, store.size):
        with pytest.raises(Unavailable):
            operation(digest)
    with pytest.raises(Unavailable):
        store.put(b"x")


@dataclass
class FakeS3:
    """A tiny HTTP server standing in for S3; every request gets the answer set here."""

    endpoint: str = ""
    status: int = 500
    code: str = "InternalError"  # the S3 error code in the XML body (not sent on HEAD)
    body: bytes = b""  # what a 200 carries


@pytest.fixture(scope="module")
def fake_s3() -> Iterator[FakeS3]:
    fake = FakeS3()

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            payload = fake.body
            if fake.status != 200:
                payload = f"<Error><Code>{fake.code}</Code><Message>fake</Message></Error>".encode()
            self.send_response(fake.status)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def do_GET(self) -> None:
            self._answer()

        def do_PUT(self) -> None:
            self._answer()

        def do_HEAD(self) -> None:
            self._answer()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads, server.block_on_close = True, False
    fake.endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [
        (500, "InternalError", Unavailable),
        (503, "SlowDown", Unavailable),
        (403, "AccessDenied", Unavailable),
        (403, "SignatureDoesNotMatch", Unavailable),
        (404, "NoSuchBucket", Unavailable),
        (404, "NoSuchKey", NotFound),
        (400, "EntityTooLarge", PayloadTooLarge),
        (400, "InvalidRequest", CaliFusionError),
    ],
)
def test_s3_errors_become_project_errors(
    fake_s3: FakeS3, status: int, code: str, error: type[Exception]
) -> None:
    fake_s3.status, fake_s3.code = status, code
    store = _store(fake_s3.endpoint)
    with pytest.raises(error) as raised:
        store.get(digest_of(b"x"))
    assert type(raised.value).__module__ == "califusion.core.errors"
    if status != 404:
        # put starts with a HEAD, whose answer has no body: only the status tells.
        with pytest.raises(error if status != 400 else CaliFusionError):
            store.put(b"x")


def test_bytes_that_do_not_match_their_name_are_refused(fake_s3: FakeS3) -> None:
    fake_s3.status, fake_s3.body = 200, b"not what was asked for"
    with pytest.raises(CaliFusionError, match="corrupt"):
        _store(fake_s3.endpoint).get(digest_of(b"x"))
