"""Settings to store: blob URLs, the factory, the settings fields and the command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from califusion.coordinator.server import parse_args
from califusion.core.errors import InvalidInput
from califusion.core.settings import CoordinatorSettings
from califusion.storage import LocalBlobStore, open_blob_store, parse_s3_url
from califusion.storage.factory import S3Location
from califusion.storage.s3 import S3BlobStore

from .conftest import S3Server


@pytest.mark.parametrize(
    ("url", "location"),
    [
        ("s3://bucket", S3Location("bucket", "blobs/", None, None, True)),
        ("s3://bucket/", S3Location("bucket", "blobs/", None, None, True)),
        (
            "s3://cf-blobs/prod/blobs?endpoint=http://127.0.0.1:8333&region=eu-west-1",
            S3Location("cf-blobs", "prod/blobs", "http://127.0.0.1:8333", "eu-west-1", True),
        ),
        (
            "s3://b.example/x?create_bucket=false&endpoint=https://s3.example:9000/",
            S3Location("b.example", "x", "https://s3.example:9000/", None, False),
        ),
    ],
)
def test_blob_urls(url: str, location: S3Location) -> None:
    assert parse_s3_url(url) == location


@pytest.mark.parametrize(
    "url",
    [
        "s3://KEY:SECRET@bucket/p",  # credentials never in the URL (it is logged)
        "s3://KEY@bucket/p",
        "s3://bucket:9000/p",
        "s3:///p",
        "http://bucket/p",
        "/var/lib/blobs",
        "s3://bucket?endpoint=ftp://host",
        "s3://bucket?endpoint=http://user:pw@host",
        "s3://bucket?endpoint=http://a&endpoint=http://b",
        "s3://bucket?regoin=us-east-1",
        "s3://bucket?create_bucket=maybe",
    ],
)
def test_bad_blob_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidInput):
        parse_s3_url(url)


def test_without_a_url_the_store_is_the_local_folder(tmp_path: Path) -> None:
    for url in (None, ""):
        store = open_blob_store(blob_dir=tmp_path / "blobs", blob_url=url)
        assert isinstance(store, LocalBlobStore)
        assert store.root == tmp_path / "blobs"


def test_a_url_opens_the_s3_store(s3_server: S3Server, tmp_path: Path) -> None:
    url = f"s3://{s3_server.bucket}/factory/?endpoint={s3_server.endpoint_url}&region=us-east-1"
    store = open_blob_store(
        blob_dir=tmp_path / "unused",
        blob_url=url,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
    )
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix) == (s3_server.bucket, "factory/")
    assert store.get(store.put(b"via the factory")) == b"via the factory"
    assert s3_server.store("factory").exists(store.put(b"via the factory"))
    assert not (tmp_path / "unused").exists()


def test_settings_and_command_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CALIFUSION_HOME", str(tmp_path))
    assert CoordinatorSettings().blob_url is None
    monkeypatch.setenv("CALIFUSION_BLOB_URL", "s3://env-bucket/p")
    monkeypatch.setenv("CALIFUSION_S3_ACCESS_KEY", "AKIDEXAMPLE")
    monkeypatch.setenv("CALIFUSION_S3_SECRET_KEY", "wJalrXUtnFEMI")
    settings = CoordinatorSettings()
    assert settings.blob_url == "s3://env-bucket/p"
    assert settings.s3_access_key == "AKIDEXAMPLE"
    assert settings.s3_secret_key is not None
    assert settings.s3_secret_key.get_secret_value() == "wJalrXUtnFEMI"
    assert "wJalrXUtnFEMI" not in repr(settings)
    url = "s3://cli-bucket/blobs?endpoint=http://127.0.0.1:8333"
    assert parse_args(["--blob-url", url]).blob_url == url
