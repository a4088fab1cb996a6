"""ICRC-1 rules, one test each, run against SQLite and PostgreSQL (the ``ledger`` fixture)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from califusion.core.clock import FakeClock
from califusion.core.errors import InvalidInput
from califusion.crypto.principal import Account
from califusion.ledger import (
    BadBurn,
    BadFee,
    CreatedInFuture,
    Duplicate,
    Err,
    InsufficientFunds,
    Ledger,
    Map,
    Nat,
    Ok,
    StandardRecord,
    Text,
    TooOld,
    TransferArg,
    verify_store,
)

from .helpers import ALICE, BOB, CAROL, DAY_NS, DRIFT_NS, MINTER, acct, sub

Fund = Callable[[Account, int], None]
FEE = 10_000


def _block(ledger: Ledger, index: int) -> dict[str, object]:
    """The block at ``index`` as a plain dict of its top-level and ``tx`` fields."""
    (entry,) = ledger.icrc3_get_blocks(index, 1).blocks
    assert isinstance(entry.block, Map)
    top = dict(entry.block.entries)
    tx = top.pop("tx")
    assert isinstance(tx, Map)
    return {**top, **{f"tx.{k}": v for k, v in tx.entries}}


def test_metadata(ledger: Ledger) -> None:
    assert ledger.icrc1_name() == "CaliFusion Token"
    assert ledger.icrc1_symbol() == "CFT"
    assert ledger.icrc1_decimals() == 8
    assert ledger.icrc1_fee() == FEE
    assert ledger.icrc1_minting_account() == Account(MINTER)
    assert dict(ledger.icrc1_metadata()) == {
        "icrc1:decimals": Nat(8),
        "icrc1:name": Text("CaliFusion Token"),
        "icrc1:symbol": Text("CFT"),
        "icrc1:fee": Nat(FEE),
        "icrc1:max_memo_length": Nat(32),
    }
    names = [record.name for record in ledger.icrc1_supported_standards()]
    assert names == ["ICRC-1", "ICRC-2", "ICRC-3"]
    assert all(isinstance(r, StandardRecord) for r in ledger.icrc1_supported_standards())


@pytest.mark.parametrize("amount", [1.5, 10.0, True, -1, "5"])
def test_amounts_are_natural_ints_never_floats(amount: object) -> None:
    with pytest.raises(InvalidInput):
        TransferArg(to=Account(BOB), amount=amount)  # type: ignore[arg-type]


def test_balances_and_supply_are_ints(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 123_456_789)
    assert type(ledger.icrc1_balance_of(Account(ALICE))) is int
    assert type(ledger.icrc1_total_supply()) is int


def test_transfer_moves_amount_and_burns_the_fee(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 1_000_000)
    result = ledger.icrc1_transfer(ALICE, TransferArg(to=Account(BOB), amount=300_000))
    assert result == Ok(1)
    assert ledger.icrc1_balance_of(Account(ALICE)) == 1_000_000 - 300_000 - FEE
    assert ledger.icrc1_balance_of(Account(BOB)) == 300_000
    assert ledger.icrc1_total_supply() == 1_000_000 - FEE


def test_bad_fee_when_a_given_fee_differs(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 1_000_000)
    for fee in (0, FEE - 1, FEE + 1):
        result = ledger.icrc1_transfer(ALICE, TransferArg(to=Account(BOB), amount=1, fee=fee))
        assert result == Err(BadFee(expected_fee=FEE))
    assert ledger.icrc1_balance_of(Account(ALICE)) == 1_000_000


def test_given_fee_is_recorded_in_tx_and_default_fee_at_top_level(
    ledger: Ledger, fund: Fund
) -> None:
    fund(Account(ALICE), 1_000_000)
    assert ledger.icrc1_transfer(ALICE, TransferArg(to=Account(BOB), amount=5, fee=FEE)) == Ok(1)
    assert ledger.icrc1_transfer(ALICE, TransferArg(to=Account(BOB), amount=5)) == Ok(2)
    with_fee, without_fee = _block(ledger, 1), _block(ledger, 2)
    assert with_fee["tx.fee"] == Nat(FEE) and "fee" not in with_fee
    assert without_fee["fee"] == Nat(FEE) and "tx.fee" not in without_fee


def test_insufficient_funds_must_cover_amount_plus_fee(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 100_000)
    result = ledger.icrc1_transfer(ALICE, TransferArg(to=Account(BOB), amount=100_000 - FEE + 1))
    assert result == Err(InsufficientFunds(balance=100_000))
    exact = ledger.icrc1_transfer(ALICE, TransferArg(to=Account(BOB), amount=100_000 - FEE))
    assert isinstance(exact, Ok)
    assert ledger.icrc1_balance_of(Account(ALICE)) == 0


def test_amount_above_the_token_cap_is_insufficient_funds(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 50_000)
    result = ledger.icrc1_transfer(ALICE, TransferArg(to=Account(BOB), amount=2**64))
    assert result == Err(InsufficientFunds(balance=50_000))


def test_mint_from_the_minting_account_has_no_fee(ledger: Ledger) -> None:
    assert ledger.icrc1_transfer(MINTER, TransferArg(to=Account(BOB), amount=777)) == Ok(0)
    assert ledger.icrc1_transfer(MINTER, TransferArg(to=Account(BOB), amount=3, fee=0)) == Ok(1)
    assert ledger.icrc1_transfer(MINTER, TransferArg(to=Account(BOB), amount=3, fee=FEE)) == Err(
        BadFee(expected_fee=0)
    )
    assert ledger.icrc1_balance_of(Account(BOB)) == 780
    assert ledger.icrc1_total_supply() == 780
    block = _block(ledger, 0)
    assert block["tx.op"] == Text("mint") and "fee" not in block and "tx.from" not in block


def test_burn_to_the_minting_account_has_no_fee(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 100_000)
    assert ledger.icrc1_transfer(ALICE, TransferArg(to=Account(MINTER), amount=40_000)) == Ok(1)
    assert ledger.icrc1_balance_of(Account(ALICE)) == 60_000
    assert ledger.icrc1_total_supply() == 60_000
    block = _block(ledger, 1)
    assert block["tx.op"] == Text("burn") and "fee" not in block and "tx.to" not in block
    result = ledger.icrc1_transfer(ALICE, TransferArg(to=Account(MINTER), amount=20_000, fee=FEE))
    assert result == Err(BadFee(expected_fee=0))


def test_burn_below_min_burn_amount_is_bad_burn(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 100_000)
    result = ledger.icrc1_transfer(ALICE, TransferArg(to=Account(MINTER), amount=FEE - 1))
    assert result == Err(BadBurn(min_burn_amount=FEE))
    zero = ledger.icrc1_transfer(ALICE, TransferArg(to=Account(MINTER), amount=0))
    assert zero == Err(BadBurn(min_burn_amount=FEE))


def test_burn_of_a_balance_below_min_burn_takes_it_all(ledger: Ledger, fund: Fund) -> None:
    # As the reference: the minimum is min(min_burn_amount, balance), so dust can be burnt.
    fund(Account(ALICE), 3_000)
    small = ledger.icrc1_transfer(ALICE, TransferArg(to=Account(MINTER), amount=2_999))
    assert small == Err(BadBurn(min_burn_amount=3_000))
    assert ledger.icrc1_transfer(ALICE, TransferArg(to=Account(MINTER), amount=3_000)) == Ok(1)
    assert ledger.icrc1_total_supply() == 0


def test_memo_longer_than_32_bytes_is_rejected(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 100_000)
    with pytest.raises(InvalidInput, match="memo"):
        ledger.icrc1_transfer(ALICE, TransferArg(to=Account(BOB), amount=1, memo=b"m" * 33))
    assert ledger.icrc3_get_blocks(0, 10).log_length == 1
    ok = ledger.icrc1_transfer(ALICE, TransferArg(to=Account(BOB), amount=1, memo=b"m" * 32))
    assert ok == Ok(1)


def test_no_dedup_without_created_at_time(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 100_000)
    arg = TransferArg(to=Account(BOB), amount=1, memo=b"same")
    assert ledger.icrc1_transfer(ALICE, arg) == Ok(1)
    assert ledger.icrc1_transfer(ALICE, arg) == Ok(2)


def test_same_call_within_window_is_duplicate(ledger: Ledger, fund: Fund, clock: FakeClock) -> None:
    fund(Account(ALICE), 100_000)
    arg = TransferArg(to=Account(BOB), amount=1, created_at_time=ledger.now_ns())
    assert ledger.icrc1_transfer(ALICE, arg) == Ok(1)
    clock.advance(3600)
    assert ledger.icrc1_transfer(ALICE, arg) == Err(Duplicate(duplicate_of=1))
    assert ledger.icrc1_balance_of(Account(BOB)) == 1


def test_dedup_key_is_caller_and_every_field(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 100_000)
    fund(Account(CAROL), 100_000)
    now = ledger.now_ns()
    base = TransferArg(to=Account(BOB), amount=1, created_at_time=now)
    assert ledger.icrc1_transfer(ALICE, base) == Ok(2)
    variants = [
        TransferArg(to=Account(BOB), amount=1, created_at_time=now, memo=b"x"),
        TransferArg(to=Account(BOB), amount=2, created_at_time=now),
        TransferArg(to=Account(BOB), amount=1, created_at_time=now, fee=FEE),
        TransferArg(to=Account(BOB), amount=1, created_at_time=now - 1),
        TransferArg(to=Account(BOB, sub(1)), amount=1, created_at_time=now),
    ]
    for offset, variant in enumerate(variants):
        assert ledger.icrc1_transfer(ALICE, variant) == Ok(3 + offset)
    assert ledger.icrc1_transfer(CAROL, base) == Ok(8)  # another caller
    assert ledger.icrc1_transfer(ALICE, base) == Err(Duplicate(duplicate_of=2))


def test_too_old_outside_the_window(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 100_000)
    now = ledger.now_ns()
    old = TransferArg(to=Account(BOB), amount=1, created_at_time=now - DAY_NS - 1)
    assert ledger.icrc1_transfer(ALICE, old) == Err(TooOld())
    edge = TransferArg(to=Account(BOB), amount=1, created_at_time=now - DAY_NS)
    assert ledger.icrc1_transfer(ALICE, edge) == Ok(1)


def test_created_in_future_beyond_the_drift(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 100_000)
    now = ledger.now_ns()
    future = TransferArg(to=Account(BOB), amount=1, created_at_time=now + DRIFT_NS + 1)
    assert ledger.icrc1_transfer(ALICE, future) == Err(CreatedInFuture(ledger_time=now))
    edge = TransferArg(to=Account(BOB), amount=1, created_at_time=now + DRIFT_NS)
    assert ledger.icrc1_transfer(ALICE, edge) == Ok(1)


def test_a_duplicate_past_the_window_is_too_old(
    ledger: Ledger, fund: Fund, clock: FakeClock
) -> None:
    fund(Account(ALICE), 100_000)
    arg = TransferArg(to=Account(BOB), amount=1, created_at_time=ledger.now_ns())
    assert ledger.icrc1_transfer(ALICE, arg) == Ok(1)
    clock.advance(24 * 3600 + 1)
    assert ledger.icrc1_transfer(ALICE, arg) == Err(TooOld())


def test_a_refused_call_is_not_remembered_for_dedup(ledger: Ledger, fund: Fund) -> None:
    arg = TransferArg(to=Account(BOB), amount=50_000, created_at_time=ledger.now_ns())
    assert ledger.icrc1_transfer(ALICE, arg) == Err(InsufficientFunds(balance=0))
    fund(Account(ALICE), 100_000)
    assert ledger.icrc1_transfer(ALICE, arg) == Ok(1)


def test_the_caller_owns_the_from_account(ledger: Ledger, fund: Fund) -> None:
    fund(acct(ALICE, 7), 100_000)
    # Bob names Alice's subaccount, but the sender is always {owner = caller; subaccount}.
    stolen = ledger.icrc1_transfer(
        BOB, TransferArg(to=Account(BOB), amount=1, from_subaccount=sub(7))
    )
    assert stolen == Err(InsufficientFunds(balance=0))
    own = ledger.icrc1_transfer(
        ALICE, TransferArg(to=Account(BOB), amount=1, from_subaccount=sub(7))
    )
    assert own == Ok(1)
    assert ledger.icrc1_balance_of(acct(ALICE, 7)) == 100_000 - 1 - FEE


def test_zero_subaccount_is_the_default_account(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE, sub(0)), 50_000)
    assert ledger.icrc1_balance_of(Account(ALICE)) == 50_000


def test_block_time_never_goes_back(ledger: Ledger, fund: Fund, clock: FakeClock) -> None:
    fund(Account(ALICE), 100_000)
    clock.advance(-10)
    fund(Account(ALICE), 100_000)
    assert _block(ledger, 1)["ts"] == _block(ledger, 0)["ts"]
    assert verify_store(ledger.store).ok
