"""Coordinator fixtures: a fake clock, settings on a fresh database, a running app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from califusion.coordinator import create_app
from califusion.core.clock import FakeClock
from califusion.core.settings import CoordinatorSettings
from califusion.crypto.identity import Identity

from .harness import SignedClient, running

MAX_REQUEST_BYTES = 64 * 1024
MAX_BLOB_BYTES = 256 * 1024


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> CoordinatorSettings:
    return CoordinatorSettings(
        home=tmp_path,
        database_url=database_url,
        blob_dir=tmp_path / "blobs",
        max_request_bytes=MAX_REQUEST_BYTES,
        max_blob_bytes=MAX_BLOB_BYTES,
        max_wrapped_key_bytes=512,
        tick_interval_s=3600,  # tests drive deadlines by hand unless they test the ticker
    )


@pytest.fixture
def api(settings: CoordinatorSettings, clock: FakeClock) -> Iterator[SignedClient]:
    """A running coordinator app and a client that signs requests at the fake clock's time."""
    with running(create_app(settings, clock=clock), clock) as client:
        yield client


@pytest.fixture
def publisher() -> Identity:
    return Identity.generate()


@pytest.fixture
def trainers() -> list[Identity]:
    return [Identity.generate() for _ in range(3)]
