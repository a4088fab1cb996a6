"""The BlobStore contract, run against every backend: a local folder and S3 (SeaweedFS)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from califusion.core.errors import CaliFusionError, InvalidInput, NotFound
from califusion.storage import BlobStore, LocalBlobStore, check_digest, digest_of

from .conftest import S3Server

StoreFactory = Callable[[], BlobStore]


def _local(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    return lambda: LocalBlobStore(tmp_path / "blobs")


def _s3(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    server: S3Server = request.getfixturevalue("s3_server")
    prefix = f"contract-{secrets.token_hex(6)}/"  # a fresh, empty store for each test
    return lambda: server.store(prefix)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest, Path], StoreFactory]] = {
    "local": _local,
    "s3": _s3,
}


@pytest.fixture(params=sorted(BACKENDS))
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreFactory:
    """A factory for stores over one backing location: two calls see the same blobs."""
    return BACKENDS[request.param](request, tmp_path)


@pytest.fixture
def store(make_store: StoreFactory) -> BlobStore:
    return make_store()


def test_put_returns_the_sha256_and_get_returns_the_bytes(store: BlobStore) -> None:
    data = b"sealed model bytes\x00\xff"
    digest = store.put(data)
    assert digest == hashlib.sha256(data).hexdigest() == digest_of(data)
    assert store.get(digest) == data
    assert store.exists(digest)
    assert store.size(digest) == len(data)


def test_put_is_idempotent(store: BlobStore) -> None:
    assert store.put(b"same") == store.put(b"same")
    assert store.get(digest_of(b"same")) == b"same"


def test_empty_blob(store: BlobStore) -> None:
    digest = store.put(b"")
    assert store.get(digest) == b""
    assert store.size(digest) == 0


def test_absent_blob(store: BlobStore) -> None:
    missing = digest_of(b"never stored")
    assert not store.exists(missing)
    with pytest.raises(NotFound):
        store.get(missing)
    with pytest.raises(NotFound):
        store.size(missing)


@pytest.mark.parametrize(
    "digest",
    [
        "../" * 10 + "etc/passwd",
        "a" * 63,
        "a" * 65,
        "A" * 64,
        "g" * 64,
        "/" + "a" * 63,
        "..",
        "",
    ],
)
def test_malformed_digests_are_refused_before_touching_storage(
    store: BlobStore, digest: str
) -> None:
    for operation in (store.get, store.exists, store.size):
        with pytest.raises(InvalidInput):
            operation(digest)
    with pytest.raises(InvalidInput):
        check_digest(digest)


def test_blobs_survive_a_new_store_instance(make_store: StoreFactory) -> None:
    digest = make_store().put(b"persistent")
    assert make_store().get(digest) == b"persistent"


def test_large_blob_round_trips(store: BlobStore) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB
    assert store.get(store.put(data)) == data


# ---- local backend specifics ----------------------------------------------------------------


def test_local_layout_is_sharded_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    digest = store.put(b"x")
    assert (tmp_path / digest[:2] / digest[2:4] / digest).read_bytes() == b"x"
    assert list((tmp_path / "tmp").iterdir()) == []


def test_local_detects_a_corrupted_file(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    digest = store.put(b"original")
    (tmp_path / digest[:2] / digest[2:4] / digest).write_bytes(b"tampered")
    with pytest.raises(CaliFusionError, match="corrupt"):
        store.get(digest)
