"""An account's history: the blocks where it is from, to or spender, newest first."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import inspect

from califusion.core.errors import InvalidInput
from califusion.crypto.principal import Account
from califusion.ledger import (
    ApproveArgs,
    Block,
    Ledger,
    LedgerStore,
    Ok,
    TransferArg,
    TransferFromArgs,
    create_schema,
)

from .helpers import ALICE, BOB, CAROL, MINTER, acct

Fund = Callable[[Account, int], None]


@pytest.fixture
def history(ledger: Ledger, fund: Fund) -> Ledger:
    fund(Account(ALICE), 10**8)  # 0: mint to alice
    calls = [
        ledger.icrc1_transfer(ALICE, TransferArg(to=Account(BOB), amount=10**5)),  # 1
        ledger.icrc1_transfer(ALICE, TransferArg(to=acct(BOB, 3), amount=2)),  # 2 (bob's sub 3)
        ledger.icrc2_approve(ALICE, ApproveArgs(spender=Account(CAROL), amount=10**6)),  # 3
        ledger.icrc2_transfer_from(  # 4: carol spends alice's tokens, to bob
            CAROL, TransferFromArgs(from_=Account(ALICE), to=Account(BOB), amount=4)
        ),
        ledger.icrc1_transfer(BOB, TransferArg(to=Account(MINTER), amount=10_000)),  # 5: burn
    ]
    assert calls == [Ok(i) for i in range(1, 6)]
    return ledger


def _ids(ledger: Ledger, account: Account, **kwargs: int) -> list[int]:
    return [b.id for b in ledger.account_blocks(account, **kwargs)]


def test_every_role_counts_and_newest_come_first(history: Ledger) -> None:
    assert _ids(history, Account(ALICE)) == [4, 3, 2, 1, 0]
    assert _ids(history, Account(BOB)) == [5, 4, 1]
    assert _ids(history, acct(BOB, 3)) == [2]  # a subaccount is its own account
    assert _ids(history, Account(CAROL)) == [4, 3]  # as spender only
    assert _ids(history, Account(MINTER)) == []  # mints and burns name no minting account


def test_pages_go_back_from_start(history: Ledger) -> None:
    assert _ids(history, Account(ALICE), max_results=2) == [4, 3]
    assert _ids(history, Account(ALICE), start=3, max_results=2) == [2, 1]
    assert _ids(history, Account(ALICE), start=1) == [0]
    assert _ids(history, Account(ALICE), max_results=0) == []


def test_blocks_are_the_log_s_blocks(history: Ledger) -> None:
    (latest,) = history.account_blocks(Account(CAROL), max_results=1)
    assert latest.block == history.icrc3_get_blocks(4, 1).blocks[0].block
    assert Block.from_value(latest.block).block_type == "2xfer"


def test_negative_arguments_are_refused(history: Ledger) -> None:
    with pytest.raises(InvalidInput):
        history.account_blocks(Account(ALICE), start=-1)


def test_create_schema_brings_an_older_database_s_indexes_up_to_date(store: LedgerStore) -> None:
    engine = store.engine
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP INDEX ix_ledger_blocks_to_idx")
        conn.exec_driver_sql("CREATE INDEX ix_ledger_blocks_to ON ledger_blocks (to_owner, to_sub)")
    create_schema(engine)
    names = {index["name"] for index in inspect(engine).get_indexes("ledger_blocks")}
    assert {"ix_ledger_blocks_to_idx", "ix_ledger_blocks_from_idx"} <= names
    assert "ix_ledger_blocks_to" not in names
