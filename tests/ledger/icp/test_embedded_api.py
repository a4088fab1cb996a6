"""EmbeddedLedgerAPI: the embedded ledger behind LedgerAPI, one caller at a time."""

from __future__ import annotations

from collections.abc import Callable

from califusion.crypto.principal import Account
from califusion.ledger import Ledger
from califusion.ledger.api import EmbeddedLedgerAPI, LedgerAPI
from califusion.ledger.icp import IcpLedger
from califusion.ledger.types import (
    Allowance,
    AllowanceArgs,
    ApproveArgs,
    BadFee,
    Err,
    InsufficientAllowance,
    Ok,
    TransferArg,
    TransferFromArgs,
)

from ..helpers import ALICE, BOB, CAROL, acct


def _icrc_methods(cls: type) -> set[str]:
    return {name for name in dir(cls) if name.startswith(("icrc1_", "icrc2_"))}


def test_the_protocol_has_the_icrc1_and_icrc2_methods_of_the_embedded_ledger() -> None:
    assert _icrc_methods(LedgerAPI) == _icrc_methods(Ledger)
    assert _icrc_methods(LedgerAPI) == _icrc_methods(EmbeddedLedgerAPI)
    assert _icrc_methods(LedgerAPI) == _icrc_methods(IcpLedger)


def test_it_satisfies_the_protocol(ledger: Ledger) -> None:
    api: LedgerAPI = EmbeddedLedgerAPI(ledger, ALICE)
    assert isinstance(api, LedgerAPI)
    assert api.caller == ALICE


def test_a_transfer_round_trips(ledger: Ledger, fund: Callable[[Account, int], None]) -> None:
    alice = EmbeddedLedgerAPI(ledger, ALICE)
    fund(Account(ALICE), 1_000_000)
    fee = alice.icrc1_fee()

    result = alice.icrc1_transfer(TransferArg(to=Account(BOB), amount=250_000, memo=b"m"))

    assert result == Ok(1)
    assert alice.icrc1_balance_of(Account(ALICE)) == 1_000_000 - 250_000 - fee
    assert alice.icrc1_balance_of(Account(BOB)) == 250_000
    assert alice.icrc1_total_supply() == 1_000_000 - fee
    assert alice.icrc1_transfer(TransferArg(to=Account(BOB), amount=1, fee=fee + 1)) == Err(
        BadFee(fee)
    )


def test_the_caller_owns_the_from_account(
    ledger: Ledger, fund: Callable[[Account, int], None]
) -> None:
    fund(acct(ALICE, 3), 100_000)
    as_bob = EmbeddedLedgerAPI(ledger, BOB)
    as_alice = EmbeddedLedgerAPI(ledger, ALICE)
    arg = TransferArg(to=Account(CAROL), amount=10, from_subaccount=acct(ALICE, 3).subaccount)

    assert isinstance(as_bob.icrc1_transfer(arg), Err)  # Bob's subaccount 3 is empty
    assert isinstance(as_alice.icrc1_transfer(arg), Ok)


def test_approve_and_transfer_from(ledger: Ledger, fund: Callable[[Account, int], None]) -> None:
    fund(Account(ALICE), 1_000_000)
    alice = EmbeddedLedgerAPI(ledger, ALICE)
    bob = EmbeddedLedgerAPI(ledger, BOB)
    fee = alice.icrc1_fee()

    assert isinstance(alice.icrc2_approve(ApproveArgs(spender=Account(BOB), amount=50_000)), Ok)
    assert bob.icrc2_allowance(AllowanceArgs(Account(ALICE), Account(BOB))) == Allowance(50_000)
    spend = TransferFromArgs(from_=Account(ALICE), to=Account(CAROL), amount=30_000)
    assert isinstance(bob.icrc2_transfer_from(spend), Ok)
    assert bob.icrc2_transfer_from(spend) == Err(InsufficientAllowance(50_000 - 30_000 - fee))
    assert bob.icrc1_balance_of(Account(CAROL)) == 30_000


def test_read_methods_are_the_ledger_s(ledger: Ledger) -> None:
    api = EmbeddedLedgerAPI(ledger, CAROL)
    assert api.icrc1_name() == ledger.icrc1_name()
    assert api.icrc1_symbol() == ledger.icrc1_symbol()
    assert api.icrc1_decimals() == ledger.icrc1_decimals()
    assert api.icrc1_metadata() == ledger.icrc1_metadata()
    assert api.icrc1_minting_account() == ledger.icrc1_minting_account()
    assert api.icrc1_supported_standards() == ledger.icrc1_supported_standards()
