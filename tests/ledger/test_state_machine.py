"""The rules as a pure function: a dict-backed view in, a reply and a commit out, nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from califusion.core.errors import InvalidInput, Unavailable
from califusion.crypto.principal import Account
from califusion.ledger import (
    MAX_TOKENS,
    ChainTip,
    Err,
    InsufficientFunds,
    LedgerConfig,
    LedgerStore,
    Ok,
    Op,
    StoredAllowance,
    TransferArg,
    apply_transfer,
)

from .helpers import ALICE, BOB, MINTER

NOW = 1_750_000_000 * 10**9


@dataclass
class DictView:
    """The smallest LedgerView: four dicts."""

    chain: ChainTip = field(default_factory=ChainTip)
    balances: dict[Account, int] = field(default_factory=dict)
    allowances: dict[tuple[Account, Account], StoredAllowance] = field(default_factory=dict)
    seen: dict[bytes, int] = field(default_factory=dict)

    def tip(self) -> ChainTip:
        return self.chain

    def balance_of(self, account: Account) -> int:
        return self.balances.get(account, 0)

    def allowance_of(self, account: Account, spender: Account) -> StoredAllowance | None:
        return self.allowances.get((account, spender))

    def find_transaction(self, tx_hash: bytes) -> int | None:
        return self.seen.get(tx_hash)


CONFIG = LedgerConfig(minting_account=Account(MINTER))


def test_a_transfer_returns_its_block_and_changes_without_writing() -> None:
    view = DictView(ChainTip(7, b"\x11" * 32, NOW - 5, 500_000), {Account(ALICE): 500_000})
    arg = TransferArg(to=Account(BOB), amount=100_000, created_at_time=NOW, memo=b"m")
    transition = apply_transfer(view, CONFIG, ALICE, arg, NOW)
    assert transition.result == Ok(7)
    commit = transition.commit
    assert commit is not None
    assert commit.balances == {Account(ALICE): 390_000, Account(BOB): 100_000}
    assert commit.total_supply == 490_000
    assert commit.block.parent_hash == b"\x11" * 32 and commit.block.timestamp == NOW
    assert commit.block.tx.op == Op.XFER and commit.block.effective_fee == 10_000
    assert commit.block_hash == commit.block.hash()
    assert commit.dedup_hash == commit.block.tx.hash()
    assert view.balances == {Account(ALICE): 500_000}  # the view was only read


def test_a_refusal_has_no_commit() -> None:
    transition = apply_transfer(
        DictView(), CONFIG, ALICE, TransferArg(to=Account(BOB), amount=1), NOW
    )
    assert transition == type(transition)(Err(InsufficientFunds(0)), None)


def test_time_is_a_parameter_and_must_be_nat64() -> None:
    with pytest.raises(InvalidInput):
        apply_transfer(DictView(), CONFIG, ALICE, TransferArg(to=Account(BOB), amount=1), -1)


def test_minting_past_the_token_cap_is_rejected() -> None:
    view = DictView(ChainTip(1, b"\x00" * 32, NOW, MAX_TOKENS - 5))
    with pytest.raises(InvalidInput, match="cap"):
        apply_transfer(view, CONFIG, MINTER, TransferArg(to=Account(BOB), amount=6), NOW)
    assert isinstance(
        apply_transfer(view, CONFIG, MINTER, TransferArg(to=Account(BOB), amount=5), NOW).result, Ok
    )


def test_config_rejects_non_natural_settings() -> None:
    with pytest.raises(InvalidInput):
        LedgerConfig(minting_account=Account(MINTER), fee=-1)
    with pytest.raises(InvalidInput):
        LedgerConfig(minting_account=Account(MINTER), fee=0.5)  # type: ignore[arg-type]


def test_an_unreachable_database_is_unavailable() -> None:
    with pytest.raises(Unavailable):
        LedgerStore(
            "postgresql+psycopg://postgres@127.0.0.1:1/nowhere", connect_args={"connect_timeout": 2}
        )
