"""A bank (ledger + escrow executor, on SQLite and PostgreSQL) with the parties funded."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .helpers import BUYER, CFT, PUBLISHER, TRAINERS, Bank


@pytest.fixture
def bank(database_url: str) -> Iterator[Bank]:
    """On SQLite and on PostgreSQL (``database_url`` of tests/conftest.py)."""
    made = Bank(database_url)
    for who in (PUBLISHER, *TRAINERS, BUYER):
        made.mint(who, 100 * CFT)
    yield made
    made.close()
