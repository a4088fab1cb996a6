"""The library's decoded form of ICRC-1/2 replies → our ledger types (pure).

icp-py-core decodes a reply into plain Python values (described in :mod:`._candid`); the functions
here check that form against what the interface promises and build the dataclasses of
:mod:`califusion.ledger.types`. A reply that breaks the promise (a negative ``nat``, a 31-byte
subaccount, an unknown error case) raises :class:`LedgerProtocolError`; nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TypeVar

from califusion.core.errors import InvalidInput
from califusion.crypto.principal import Account, Principal
from califusion.ledger.icp._candid import LedgerProtocolError
from califusion.ledger.icrc3 import Blob, Int, Nat, Text, Value
from califusion.ledger.types import (
    Allowance,
    AllowanceChanged,
    ApproveError,
    ApproveResult,
    BadBurn,
    BadFee,
    CreatedInFuture,
    Duplicate,
    Err,
    Expired,
    GenericError,
    InsufficientAllowance,
    InsufficientFunds,
    Ok,
    StandardRecord,
    TemporarilyUnavailable,
    TooOld,
    TransferError,
    TransferFromError,
    TransferFromResult,
    TransferResult,
)

__all__ = [
    "account_from_candid",
    "allowance_from_candid",
    "approve_result_from_candid",
    "metadata_from_candid",
    "minting_account_from_candid",
    "nat_from_candid",
    "supported_standards_from_candid",
    "text_from_candid",
    "transfer_from_result_from_candid",
    "transfer_result_from_candid",
]

E = TypeVar("E")

# --- reading the decoded form -----------------------------------------------------------------


def _record(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
        raise LedgerProtocolError(f"{what}: expected a record, got {type(value).__name__}")
    return value


def _field(record: Mapping[str, object], name: str, what: str) -> object:
    if name not in record:
        raise LedgerProtocolError(f"{what}: the record lacks {name!r}")
    return record[name]


def _nat(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LedgerProtocolError(f"{what}: expected a natural number, got {value!r}")
    return value


def _text(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise LedgerProtocolError(f"{what}: expected text, got {type(value).__name__}")
    return value


def _blob(value: object, what: str) -> bytes:
    if not isinstance(value, bytes):
        raise LedgerProtocolError(f"{what}: expected a blob, got {type(value).__name__}")
    return value


def _option(value: object, what: str) -> object | None:
    if not isinstance(value, list) or len(value) > 1:
        raise LedgerProtocolError(f"{what}: expected an opt value, got {value!r}")
    return value[0] if value else None


def _variant(value: object, what: str) -> tuple[str, object]:
    if not isinstance(value, dict) or len(value) != 1:
        raise LedgerProtocolError(f"{what}: expected a variant, got {value!r}")
    ((case, payload),) = value.items()
    if not isinstance(case, str):
        raise LedgerProtocolError(f"{what}: variant case {case!r} is not a name")
    return case, payload


def _nat_field(payload: object, name: str, what: str) -> int:
    return _nat(_field(_record(payload, what), name, what), f"{what}.{name}")


def account_from_candid(value: object) -> Account:
    """An ``Account`` record."""
    record = _record(value, "Account")
    owner = _field(record, "owner", "Account")
    if not isinstance(owner, Principal):
        raise LedgerProtocolError("Account.owner: expected a principal")
    subaccount = _option(_field(record, "subaccount", "Account"), "Account.subaccount")
    try:
        return Account(owner, None if subaccount is None else _blob(subaccount, "subaccount"))
    except InvalidInput as exc:
        raise LedgerProtocolError(f"Account: {exc}") from exc


# --- results and their errors -----------------------------------------------------------------


def _bad_fee(payload: object) -> BadFee:
    return BadFee(_nat_field(payload, "expected_fee", "BadFee"))


def _bad_burn(payload: object) -> BadBurn:
    return BadBurn(_nat_field(payload, "min_burn_amount", "BadBurn"))


def _insufficient_funds(payload: object) -> InsufficientFunds:
    return InsufficientFunds(_nat_field(payload, "balance", "InsufficientFunds"))


def _insufficient_allowance(payload: object) -> InsufficientAllowance:
    return InsufficientAllowance(_nat_field(payload, "allowance", "InsufficientAllowance"))


def _too_old(payload: object) -> TooOld:
    return TooOld()


def _created_in_future(payload: object) -> CreatedInFuture:
    return CreatedInFuture(_nat_field(payload, "ledger_time", "CreatedInFuture"))


def _duplicate(payload: object) -> Duplicate:
    return Duplicate(_nat_field(payload, "duplicate_of", "Duplicate"))


def _temporarily_unavailable(payload: object) -> TemporarilyUnavailable:
    return TemporarilyUnavailable()


def _generic_error(payload: object) -> GenericError:
    record = _record(payload, "GenericError")
    return GenericError(
        error_code=_nat(_field(record, "error_code", "GenericError"), "GenericError.error_code"),
        message=_text(_field(record, "message", "GenericError"), "GenericError.message"),
    )


def _allowance_changed(payload: object) -> AllowanceChanged:
    return AllowanceChanged(_nat_field(payload, "current_allowance", "AllowanceChanged"))


def _expired(payload: object) -> Expired:
    return Expired(_nat_field(payload, "ledger_time", "Expired"))


_TRANSFER_ERRORS: dict[str, Callable[[object], TransferError]] = {
    "BadFee": _bad_fee,
    "BadBurn": _bad_burn,
    "InsufficientFunds": _insufficient_funds,
    "TooOld": _too_old,
    "CreatedInFuture": _created_in_future,
    "Duplicate": _duplicate,
    "TemporarilyUnavailable": _temporarily_unavailable,
    "GenericError": _generic_error,
}
_APPROVE_ERRORS: dict[str, Callable[[object], ApproveError]] = {
    "BadFee": _bad_fee,
    "InsufficientFunds": _insufficient_funds,
    "AllowanceChanged": _allowance_changed,
    "Expired": _expired,
    "TooOld": _too_old,
    "CreatedInFuture": _created_in_future,
    "Duplicate": _duplicate,
    "TemporarilyUnavailable": _temporarily_unavailable,
    "GenericError": _generic_error,
}
_TRANSFER_FROM_ERRORS: dict[str, Callable[[object], TransferFromError]] = {
    "BadFee": _bad_fee,
    "BadBurn": _bad_burn,
    "InsufficientFunds": _insufficient_funds,
    "InsufficientAllowance": _insufficient_allowance,
    "TooOld": _too_old,
    "CreatedInFuture": _created_in_future,
    "Duplicate": _duplicate,
    "TemporarilyUnavailable": _temporarily_unavailable,
    "GenericError": _generic_error,
}


def _result(value: object, errors: Mapping[str, Callable[[object], E]], what: str) -> Ok | Err[E]:
    case, payload = _variant(value, what)
    if case == "Ok":
        return Ok(_nat(payload, f"{what}.Ok"))
    if case != "Err":
        raise LedgerProtocolError(f"{what}: unknown case {case!r}")
    error_case, error_payload = _variant(payload, f"{what}.Err")
    parse = errors.get(error_case)
    if parse is None:
        raise LedgerProtocolError(f"{what}: unknown error {error_case!r}")
    return Err(parse(error_payload))


def transfer_result_from_candid(value: object) -> TransferResult:
    """``variant { Ok : nat; Err : TransferError }``."""
    return _result(value, _TRANSFER_ERRORS, "TransferResult")


def approve_result_from_candid(value: object) -> ApproveResult:
    """``variant { Ok : nat; Err : ApproveError }``."""
    return _result(value, _APPROVE_ERRORS, "ApproveResult")


def transfer_from_result_from_candid(value: object) -> TransferFromResult:
    """``variant { Ok : nat; Err : TransferFromError }``."""
    return _result(value, _TRANSFER_FROM_ERRORS, "TransferFromResult")


# --- other replies ----------------------------------------------------------------------------


def nat_from_candid(value: object) -> int:
    """A ``nat`` (or ``nat8``) reply."""
    return _nat(value, "reply")


def text_from_candid(value: object) -> str:
    """A ``text`` reply."""
    return _text(value, "reply")


def allowance_from_candid(value: object) -> Allowance:
    """``record { allowance : nat; expires_at : opt nat64 }`` (later-added fields ignored)."""
    record = _record(value, "Allowance")
    expires_at = _option(_field(record, "expires_at", "Allowance"), "Allowance.expires_at")
    return Allowance(
        allowance=_nat(_field(record, "allowance", "Allowance"), "Allowance.allowance"),
        expires_at=None if expires_at is None else _nat(expires_at, "Allowance.expires_at"),
    )


def minting_account_from_candid(value: object) -> Account | None:
    """``opt Account``."""
    account = _option(value, "minting account")
    return None if account is None else account_from_candid(account)


def _metadata_value(value: object, key: str) -> Value:
    case, payload = _variant(value, f"metadata {key!r}")
    what = f"metadata {key!r}"
    if case == "Nat":
        return Nat(_nat(payload, what))
    if case == "Int":
        if isinstance(payload, bool) or not isinstance(payload, int):
            raise LedgerProtocolError(f"{what}: expected an integer, got {payload!r}")
        return Int(payload)
    if case == "Text":
        return Text(_text(payload, what))
    if case == "Blob":
        return Blob(_blob(payload, what))
    raise LedgerProtocolError(f"{what}: unknown MetadataValue case {case!r}")


def metadata_from_candid(value: object) -> list[tuple[str, Value]]:
    """``vec record { text; MetadataValue }``, in the ledger's order."""
    if not isinstance(value, list):
        raise LedgerProtocolError("metadata: expected a vector")
    entries: list[tuple[str, Value]] = []
    for entry in value:
        if not isinstance(entry, list) or len(entry) != 2:
            raise LedgerProtocolError(f"metadata: expected a (text, value) pair, got {entry!r}")
        key = _text(entry[0], "metadata key")
        entries.append((key, _metadata_value(entry[1], key)))
    return entries


def supported_standards_from_candid(value: object) -> list[StandardRecord]:
    """``vec record { name : text; url : text }``."""
    if not isinstance(value, list):
        raise LedgerProtocolError("supported standards: expected a vector")
    standards = []
    for entry in value:
        record = _record(entry, "StandardRecord")
        standards.append(
            StandardRecord(
                name=_text(_field(record, "name", "StandardRecord"), "StandardRecord.name"),
                url=_text(_field(record, "url", "StandardRecord"), "StandardRecord.url"),
            )
        )
    return standards
