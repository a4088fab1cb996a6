"""ICRC-2 rules, one test each, run against SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from califusion.core.clock import FakeClock
from califusion.core.errors import InvalidInput
from califusion.crypto.principal import Account
from califusion.ledger import (
    Allowance,
    AllowanceArgs,
    AllowanceChanged,
    ApproveArgs,
    BadFee,
    Duplicate,
    Err,
    Expired,
    InsufficientAllowance,
    InsufficientFunds,
    Ledger,
    Ok,
    TransferFromArgs,
    verify_store,
)

from .helpers import ALICE, BOB, CAROL, MINTER, NS, acct, sub

Fund = Callable[[Account, int], None]
FEE = 10_000


def allowance(ledger: Ledger, owner: Account, spender: Account) -> Allowance:
    return ledger.icrc2_allowance(AllowanceArgs(account=owner, spender=spender))


def test_approve_charges_the_fee_to_the_approver(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 100_000)
    assert ledger.icrc2_approve(ALICE, ApproveArgs(spender=Account(BOB), amount=500_000)) == Ok(1)
    assert ledger.icrc1_balance_of(Account(ALICE)) == 100_000 - FEE
    assert ledger.icrc1_total_supply() == 100_000 - FEE
    # The approver need not hold the approved amount, only the fee.
    assert allowance(ledger, Account(ALICE), Account(BOB)) == Allowance(500_000, None)


def test_approve_with_a_wrong_fee_is_bad_fee(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 100_000)
    result = ledger.icrc2_approve(ALICE, ApproveArgs(spender=Account(BOB), amount=1, fee=1))
    assert result == Err(BadFee(expected_fee=FEE))


def test_approve_without_funds_for_the_fee(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), FEE - 1)
    result = ledger.icrc2_approve(ALICE, ApproveArgs(spender=Account(BOB), amount=1))
    assert result == Err(InsufficientFunds(balance=FEE - 1))
    assert allowance(ledger, Account(ALICE), Account(BOB)) == Allowance(0, None)


def test_approve_replaces_the_allowance(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 100_000)
    ledger.icrc2_approve(ALICE, ApproveArgs(spender=Account(BOB), amount=70_000))
    ledger.icrc2_approve(ALICE, ApproveArgs(spender=Account(BOB), amount=20_000))
    assert allowance(ledger, Account(ALICE), Account(BOB)) == Allowance(20_000, None)
    ledger.icrc2_approve(ALICE, ApproveArgs(spender=Account(BOB), amount=0))
    assert allowance(ledger, Account(ALICE), Account(BOB)) == Allowance(0, None)


def test_expected_allowance_mismatch_is_allowance_changed(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 100_000)
    ledger.icrc2_approve(ALICE, ApproveArgs(spender=Account(BOB), amount=30_000))
    wrong = ApproveArgs(spender=Account(BOB), amount=5, expected_allowance=29_999)
    assert ledger.icrc2_approve(ALICE, wrong) == Err(AllowanceChanged(current_allowance=30_000))
    right = ApproveArgs(spender=Account(BOB), amount=5, expected_allowance=30_000)
    assert ledger.icrc2_approve(ALICE, right) == Ok(2)
    assert allowance(ledger, Account(ALICE), Account(BOB)) == Allowance(5, None)


def test_expected_allowance_zero_when_none_exists(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 100_000)
    args = ApproveArgs(spender=Account(BOB), amount=5, expected_allowance=1)
    assert ledger.icrc2_approve(ALICE, args) == Err(AllowanceChanged(current_allowance=0))
    args = ApproveArgs(spender=Account(BOB), amount=5, expected_allowance=0)
    assert ledger.icrc2_approve(ALICE, args) == Ok(1)


def test_expires_at_in_the_past_is_expired(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 100_000)
    now = ledger.now_ns()
    for expires_at in (now - 1, now):
        args = ApproveArgs(spender=Account(BOB), amount=5, expires_at=expires_at)
        assert ledger.icrc2_approve(ALICE, args) == Err(Expired(ledger_time=now))
    assert ledger.icrc1_balance_of(Account(ALICE)) == 100_000  # the fee was not kept


def test_insufficient_funds_is_checked_before_expiry(ledger: Ledger) -> None:
    # The reference charges the approval fee first, then checks expires_at.
    args = ApproveArgs(spender=Account(BOB), amount=5, expires_at=1)
    assert ledger.icrc2_approve(ALICE, args) == Err(InsufficientFunds(balance=0))


def test_allowance_expires(ledger: Ledger, fund: Fund, clock: FakeClock) -> None:
    fund(Account(ALICE), 100_000)
    expires_at = ledger.now_ns() + 10 * NS
    ledger.icrc2_approve(
        ALICE, ApproveArgs(spender=Account(BOB), amount=50_000, expires_at=expires_at)
    )
    assert allowance(ledger, Account(ALICE), Account(BOB)) == Allowance(50_000, expires_at)
    clock.advance(10)
    assert allowance(ledger, Account(ALICE), Account(BOB)) == Allowance(0, None)
    spend = TransferFromArgs(from_=Account(ALICE), to=Account(CAROL), amount=1)
    assert ledger.icrc2_transfer_from(BOB, spend) == Err(InsufficientAllowance(allowance=0))


def test_self_approval_is_rejected(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 100_000)
    for spender in (Account(ALICE), acct(ALICE, 3)):
        with pytest.raises(InvalidInput, match="self approval"):
            ledger.icrc2_approve(ALICE, ApproveArgs(spender=spender, amount=5))


def test_the_minting_account_cannot_approve(ledger: Ledger) -> None:
    with pytest.raises(InvalidInput, match="minting account"):
        ledger.icrc2_approve(MINTER, ApproveArgs(spender=Account(BOB), amount=5))


def test_approve_is_deduplicated(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 100_000)
    args = ApproveArgs(spender=Account(BOB), amount=5, created_at_time=ledger.now_ns())
    assert ledger.icrc2_approve(ALICE, args) == Ok(1)
    assert ledger.icrc2_approve(ALICE, args) == Err(Duplicate(duplicate_of=1))


def test_transfer_from_reduces_allowance_by_amount_plus_fee(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 1_000_000)
    ledger.icrc2_approve(ALICE, ApproveArgs(spender=Account(BOB), amount=100_000))
    spend = TransferFromArgs(from_=Account(ALICE), to=Account(CAROL), amount=60_000)
    assert ledger.icrc2_transfer_from(BOB, spend) == Ok(2)
    assert ledger.icrc1_balance_of(Account(CAROL)) == 60_000
    assert ledger.icrc1_balance_of(Account(ALICE)) == 1_000_000 - FEE - 60_000 - FEE
    assert allowance(ledger, Account(ALICE), Account(BOB)) == Allowance(100_000 - 70_000, None)


def test_transfer_from_beyond_the_allowance(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 1_000_000)
    ledger.icrc2_approve(ALICE, ApproveArgs(spender=Account(BOB), amount=100_000))
    spend = TransferFromArgs(from_=Account(ALICE), to=Account(CAROL), amount=100_000 - FEE + 1)
    assert ledger.icrc2_transfer_from(BOB, spend) == Err(InsufficientAllowance(allowance=100_000))
    exact = TransferFromArgs(from_=Account(ALICE), to=Account(CAROL), amount=100_000 - FEE)
    assert ledger.icrc2_transfer_from(BOB, exact) == Ok(2)
    assert allowance(ledger, Account(ALICE), Account(BOB)) == Allowance(0, None)


def test_transfer_from_checks_allowance_before_balance(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 30_000)
    ledger.icrc2_approve(ALICE, ApproveArgs(spender=Account(BOB), amount=10))
    spend = TransferFromArgs(from_=Account(ALICE), to=Account(CAROL), amount=50_000)
    assert ledger.icrc2_transfer_from(BOB, spend) == Err(InsufficientAllowance(allowance=10))
    ledger.icrc2_approve(ALICE, ApproveArgs(spender=Account(BOB), amount=10**9))
    assert ledger.icrc2_transfer_from(BOB, spend) == Err(InsufficientFunds(balance=10_000))
    assert allowance(ledger, Account(ALICE), Account(BOB)) == Allowance(10**9, None)


def test_allowance_belongs_to_the_spender_account(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 1_000_000)
    ledger.icrc2_approve(ALICE, ApproveArgs(spender=acct(BOB, 1), amount=100_000))
    spend = TransferFromArgs(from_=Account(ALICE), to=Account(CAROL), amount=1)
    assert ledger.icrc2_transfer_from(BOB, spend) == Err(InsufficientAllowance(allowance=0))
    from_sub = TransferFromArgs(
        from_=Account(ALICE), to=Account(CAROL), amount=1, spender_subaccount=sub(1)
    )
    assert ledger.icrc2_transfer_from(BOB, from_sub) == Ok(2)
    assert ledger.icrc2_transfer_from(CAROL, spend) == Err(InsufficientAllowance(allowance=0))


def test_transfer_from_own_account_needs_no_allowance(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 100_000)
    spend = TransferFromArgs(from_=Account(ALICE), to=Account(CAROL), amount=5)
    assert ledger.icrc2_transfer_from(ALICE, spend) == Ok(1)
    assert ledger.icrc1_balance_of(Account(ALICE)) == 100_000 - 5 - FEE


def test_transfer_from_to_the_minting_account_burns(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 100_000)
    ledger.icrc2_approve(ALICE, ApproveArgs(spender=Account(BOB), amount=50_000))
    burn = TransferFromArgs(from_=Account(ALICE), to=Account(MINTER), amount=20_000)
    assert ledger.icrc2_transfer_from(BOB, burn) == Ok(2)
    # A burn has no fee: the allowance goes down by the amount only.
    assert allowance(ledger, Account(ALICE), Account(BOB)) == Allowance(30_000, None)
    assert ledger.icrc1_total_supply() == 100_000 - FEE - 20_000
    (block,) = ledger.icrc3_get_blocks(2, 1).blocks
    assert verify_store(ledger.store).ok and block.id == 2


def test_the_minting_account_cannot_be_spent_by_delegation(ledger: Ledger) -> None:
    spend = TransferFromArgs(from_=Account(MINTER), to=Account(CAROL), amount=5)
    with pytest.raises(InvalidInput, match="minting account"):
        ledger.icrc2_transfer_from(BOB, spend)


def test_transfer_from_is_deduplicated_per_spender(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 1_000_000)
    ledger.icrc2_approve(ALICE, ApproveArgs(spender=Account(BOB), amount=100_000))
    ledger.icrc2_approve(ALICE, ApproveArgs(spender=Account(CAROL), amount=100_000))
    now = ledger.now_ns()
    spend = TransferFromArgs(from_=Account(ALICE), to=Account(CAROL), amount=1, created_at_time=now)
    assert ledger.icrc2_transfer_from(BOB, spend) == Ok(3)
    assert ledger.icrc2_transfer_from(BOB, spend) == Err(Duplicate(duplicate_of=3))
    assert ledger.icrc2_transfer_from(CAROL, spend) == Ok(4)
