"""The ICRC-1/2 call and reply types, mirroring the standards' Candid definitions.

Each Candid record is a frozen dataclass with the same field names (``from`` is a Python keyword,
so ``TransferFromArgs.from_``); each variant case is its own class, and a variant is a union of
those classes. A call's reply is ``Ok(block_index) | Err(error)``, exactly like the canister's
``variant { Ok : nat; Err : ... }``: rule violations are values, not exceptions. What the reference
ledger *traps* on (a memo that is too long, a self-approval) is raised as
:class:`~califusion.core.errors.InvalidInput`, the embedded equivalent of a rejected call.

Amounts are Python ``int`` (Candid ``nat``): never floats. Time is nanoseconds since the Unix
epoch (Candid ``nat64``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeAlias, TypeVar

from califusion.core.errors import InvalidInput
from califusion.crypto.principal import SUBACCOUNT_BYTES, Account

NAT64_MAX = 2**64 - 1

E_co = TypeVar("E_co", covariant=True)


def check_nat(name: str, value: object) -> None:
    """Raise :class:`InvalidInput` unless ``value`` is a natural number (Candid ``nat``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{name} must be a natural number (int), got {type(value).__name__}")
    if value < 0:
        raise InvalidInput(f"{name} must not be negative, got {value}")


def check_nat64(name: str, value: object) -> None:
    """Raise :class:`InvalidInput` unless ``value`` fits Candid ``nat64``."""
    check_nat(name, value)
    assert isinstance(value, int)
    if value > NAT64_MAX:
        raise InvalidInput(f"{name} must fit in 64 bits, got {value}")


def _check_opt_nat(name: str, value: object) -> None:
    if value is not None:
        check_nat(name, value)


def _check_opt_nat64(name: str, value: object) -> None:
    if value is not None:
        check_nat64(name, value)


def _check_subaccount(name: str, value: object) -> None:
    if value is None:
        return
    if not isinstance(value, bytes) or len(value) != SUBACCOUNT_BYTES:
        raise InvalidInput(f"{name} must be exactly {SUBACCOUNT_BYTES} bytes")


def _check_memo(value: object) -> None:
    if value is not None and not isinstance(value, bytes):
        raise InvalidInput("memo must be bytes")


def _check_account(name: str, value: object) -> None:
    if not isinstance(value, Account):
        raise InvalidInput(f"{name} must be an Account")


# --- call arguments ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TransferArg:
    """``icrc1_transfer`` argument; sender ``{owner = caller; subaccount = from_subaccount}``."""

    to: Account
    amount: int
    from_subaccount: bytes | None = None
    fee: int | None = None
    memo: bytes | None = None
    created_at_time: int | None = None

    def __post_init__(self) -> None:
        _check_account("to", self.to)
        check_nat("amount", self.amount)
        _check_subaccount("from_subaccount", self.from_subaccount)
        _check_opt_nat("fee", self.fee)
        _check_memo(self.memo)
        _check_opt_nat64("created_at_time", self.created_at_time)


@dataclass(frozen=True, slots=True)
class ApproveArgs:
    """``icrc2_approve`` argument: ``spender`` may move up to ``amount`` from the caller."""

    spender: Account
    amount: int
    from_subaccount: bytes | None = None
    expected_allowance: int | None = None
    expires_at: int | None = None
    fee: int | None = None
    memo: bytes | None = None
    created_at_time: int | None = None

    def __post_init__(self) -> None:
        _check_account("spender", self.spender)
        check_nat("amount", self.amount)
        _check_subaccount("from_subaccount", self.from_subaccount)
        _check_opt_nat("expected_allowance", self.expected_allowance)
        _check_opt_nat64("expires_at", self.expires_at)
        _check_opt_nat("fee", self.fee)
        _check_memo(self.memo)
        _check_opt_nat64("created_at_time", self.created_at_time)


@dataclass(frozen=True, slots=True)
class TransferFromArgs:
    """``icrc2_transfer_from`` argument; the spender is the caller's ``spender_subaccount``."""

    from_: Account
    to: Account
    amount: int
    spender_subaccount: bytes | None = None
    fee: int | None = None
    memo: bytes | None = None
    created_at_time: int | None = None

    def __post_init__(self) -> None:
        _check_account("from", self.from_)
        _check_account("to", self.to)
        check_nat("amount", self.amount)
        _check_subaccount("spender_subaccount", self.spender_subaccount)
        _check_opt_nat("fee", self.fee)
        _check_memo(self.memo)
        _check_opt_nat64("created_at_time", self.created_at_time)


@dataclass(frozen=True, slots=True)
class AllowanceArgs:
    """``icrc2_allowance`` argument."""

    account: Account
    spender: Account


@dataclass(frozen=True, slots=True)
class Allowance:
    """``icrc2_allowance`` reply: ``{allowance = 0; expires_at = null}`` when there is none."""

    allowance: int
    expires_at: int | None = None


@dataclass(frozen=True, slots=True)
class StandardRecord:
    """An ``icrc1_supported_standards`` entry."""

    name: str
    url: str


@dataclass(frozen=True, slots=True)
class SupportedBlockType:
    """An ``icrc3_supported_block_types`` entry."""

    block_type: str
    url: str


# --- error variants ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BadFee:
    expected_fee: int


@dataclass(frozen=True, slots=True)
class BadBurn:
    min_burn_amount: int


@dataclass(frozen=True, slots=True)
class InsufficientFunds:
    balance: int


@dataclass(frozen=True, slots=True)
class InsufficientAllowance:
    allowance: int


@dataclass(frozen=True, slots=True)
class TooOld:
    pass


@dataclass(frozen=True, slots=True)
class CreatedInFuture:
    ledger_time: int


@dataclass(frozen=True, slots=True)
class Duplicate:
    duplicate_of: int


@dataclass(frozen=True, slots=True)
class TemporarilyUnavailable:
    pass


@dataclass(frozen=True, slots=True)
class GenericError:
    error_code: int
    message: str


@dataclass(frozen=True, slots=True)
class AllowanceChanged:
    current_allowance: int


@dataclass(frozen=True, slots=True)
class Expired:
    ledger_time: int


TransferError: TypeAlias = (
    BadFee
    | BadBurn
    | InsufficientFunds
    | TooOld
    | CreatedInFuture
    | Duplicate
    | TemporarilyUnavailable
    | GenericError
)
ApproveError: TypeAlias = (
    BadFee
    | InsufficientFunds
    | AllowanceChanged
    | Expired
    | TooOld
    | CreatedInFuture
    | Duplicate
    | TemporarilyUnavailable
    | GenericError
)
TransferFromError: TypeAlias = (
    BadFee
    | BadBurn
    | InsufficientFunds
    | InsufficientAllowance
    | TooOld
    | CreatedInFuture
    | Duplicate
    | TemporarilyUnavailable
    | GenericError
)


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ok:
    """The call succeeded; ``block_index`` is the index of the block it appended."""

    block_index: int


@dataclass(frozen=True, slots=True)
class Err(Generic[E_co]):
    """The call was refused by a ledger rule; nothing was written."""

    error: E_co


TransferResult: TypeAlias = Ok | Err[TransferError]
ApproveResult: TypeAlias = Ok | Err[ApproveError]
TransferFromResult: TypeAlias = Ok | Err[TransferFromError]
