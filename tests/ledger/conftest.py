"""Fixtures for the ledger tests: one contract, two backends (SQLite and PostgreSQL).

PostgreSQL is the server at 127.0.0.1:5432 (user postgres, trust auth; override with
``CALIFUSION_TEST_POSTGRES``). The session creates a fresh database ``cfledger_<hex>`` and drops
it at the end. If the server is unreachable the PostgreSQL cases are skipped, or fail when the
environment variable CI is set. Test connections run with ``synchronous_commit=off`` (as the
shared fixtures in tests/conftest.py do): commits stay atomic and isolated, they only skip the
wait for the disk flush, which no test observes.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from psycopg import sql
from sqlalchemy import insert, make_url

from califusion.core.clock import FakeClock
from califusion.crypto.principal import Account
from califusion.ledger import Ledger, LedgerConfig, LedgerStore, Ok, TransferArg
from califusion.ledger.schema import TIP_ID, metadata, tip_table

from .helpers import MINTER

PG_ADMIN_URL = os.environ.get(
    "CALIFUSION_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"cfledger_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is required in CI: {exc}")
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is unreachable: {exc}")
    with admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            url = make_url(PG_ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
            url = url.update_query_dict({"options": "-csynchronous_commit=off"})
            yield url.render_as_string(hide_password=False)
        finally:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _reset(store: LedgerStore) -> None:
    """Empty every ledger table and put back the tip row (faster than dropping the schema)."""
    with store.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
        conn.execute(insert(tip_table).values(id=TIP_ID, length=0, total_supply=0))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return "sqlite://"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[LedgerStore]:
    ledger_store = LedgerStore(store_url)
    _reset(ledger_store)
    yield ledger_store
    ledger_store.close()


@pytest.fixture
def config() -> LedgerConfig:
    return LedgerConfig(minting_account=Account(MINTER))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1_750_000_000.0)


@pytest.fixture
def signing_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


@pytest.fixture
def ledger(
    store: LedgerStore, config: LedgerConfig, clock: FakeClock, signing_key: Ed25519PrivateKey
) -> Ledger:
    return Ledger(store, config, clock, signing_key)


@pytest.fixture
def fund(ledger: Ledger) -> Callable[[Account, int], None]:
    """Mint ``amount`` to ``account``."""

    def _fund(account: Account, amount: int) -> None:
        result = ledger.icrc1_transfer(MINTER, TransferArg(to=account, amount=amount))
        assert isinstance(result, Ok), result

    return _fund
