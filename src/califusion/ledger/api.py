"""The ledger as one caller sees it: the ICRC-1/2 methods, with the caller already bound.

:class:`LedgerAPI` is what payment code (escrow, staking, model purchases) depends on. Two
implementations stand behind it, so switching ledgers is configuration:

- :class:`EmbeddedLedgerAPI` — the embedded :class:`~califusion.ledger.service.Ledger`, with
  ``caller`` passed to every update call on the caller's behalf;
- :class:`califusion.ledger.icp.IcpLedger` — an ICRC-1/2 ledger canister on the Internet
  Computer, where the caller is the principal that signs the calls.

Both return the same types (:mod:`califusion.ledger.types`): rule violations come back as
``Err(...)`` values, and what a ledger refuses outright is raised as
:class:`~califusion.core.errors.InvalidInput`.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from califusion.crypto.principal import Account, Principal
from califusion.ledger.icrc3 import Value
from califusion.ledger.service import Ledger
from califusion.ledger.types import (
    Allowance,
    AllowanceArgs,
    ApproveArgs,
    ApproveResult,
    StandardRecord,
    TransferArg,
    TransferFromArgs,
    TransferFromResult,
    TransferResult,
)

__all__ = ["EmbeddedLedgerAPI", "LedgerAPI"]


@runtime_checkable
class LedgerAPI(Protocol):
    """ICRC-1 and ICRC-2 for one caller, whose principal owns ``from`` accounts (or spends)."""

    @property
    def caller(self) -> Principal:
        """The principal update calls are made as."""
        ...

    def icrc1_name(self) -> str: ...

    def icrc1_symbol(self) -> str: ...

    def icrc1_decimals(self) -> int: ...

    def icrc1_fee(self) -> int: ...

    def icrc1_metadata(self) -> list[tuple[str, Value]]: ...

    def icrc1_total_supply(self) -> int: ...

    def icrc1_minting_account(self) -> Account | None: ...

    def icrc1_balance_of(self, account: Account) -> int: ...

    def icrc1_transfer(self, arg: TransferArg) -> TransferResult:
        """Move tokens from ``{owner = caller; subaccount = arg.from_subaccount}``."""
        ...

    def icrc1_supported_standards(self) -> list[StandardRecord]: ...

    def icrc2_approve(self, arg: ApproveArgs) -> ApproveResult:
        """Let ``arg.spender`` move up to ``arg.amount`` from the caller's account."""
        ...

    def icrc2_allowance(self, arg: AllowanceArgs) -> Allowance: ...

    def icrc2_transfer_from(self, arg: TransferFromArgs) -> TransferFromResult:
        """Spend an allowance the caller holds on ``arg.from_``."""
        ...


class EmbeddedLedgerAPI:
    """:class:`LedgerAPI` over the embedded ledger, calling as ``caller``.

    The embedded ledger trusts the ``caller`` it is given: whoever builds this object must have
    authenticated that principal (the coordinator does, from the request signature).
    """

    __slots__ = ("_caller", "_ledger")

    def __init__(self, ledger: Ledger, caller: Principal) -> None:
        self._ledger = ledger
        self._caller = caller

    @property
    def caller(self) -> Principal:
        return self._caller

    def icrc1_name(self) -> str:
        return self._ledger.icrc1_name()

    def icrc1_symbol(self) -> str:
        return self._ledger.icrc1_symbol()

    def icrc1_decimals(self) -> int:
        return self._ledger.icrc1_decimals()

    def icrc1_fee(self) -> int:
        return self._ledger.icrc1_fee()

    def icrc1_metadata(self) -> list[tuple[str, Value]]:
        return self._ledger.icrc1_metadata()

    def icrc1_total_supply(self) -> int:
        return self._ledger.icrc1_total_supply()

    def icrc1_minting_account(self) -> Account | None:
        return self._ledger.icrc1_minting_account()

    def icrc1_balance_of(self, account: Account) -> int:
        return self._ledger.icrc1_balance_of(account)

    def icrc1_transfer(self, arg: TransferArg) -> TransferResult:
        return self._ledger.icrc1_transfer(self._caller, arg)

    def icrc1_supported_standards(self) -> list[StandardRecord]:
        return self._ledger.icrc1_supported_standards()

    def icrc2_approve(self, arg: ApproveArgs) -> ApproveResult:
        return self._ledger.icrc2_approve(self._caller, arg)

    def icrc2_allowance(self, arg: AllowanceArgs) -> Allowance:
        return self._ledger.icrc2_allowance(arg)

    def icrc2_transfer_from(self, arg: TransferFromArgs) -> TransferFromResult:
        return self._ledger.icrc2_transfer_from(self._caller, arg)

    def __repr__(self) -> str:
        return f"EmbeddedLedgerAPI(caller={self._caller})"
