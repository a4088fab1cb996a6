"""A fresh PostgreSQL database for each end-to-end test that asks for one."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import psycopg
import pytest

ADMIN_DSN = os.environ.get("CALIFUSION_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def fresh_postgres_database(request: pytest.FixtureRequest) -> Iterator[str]:
    """A SQLAlchemy URL of a new, empty database, dropped afterwards."""
    if "postgresql" not in request.node.name:
        yield ""
        return
    name = f"cf_e2e_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(ADMIN_DSN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL unreachable at {ADMIN_DSN}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
