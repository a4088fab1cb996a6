"""Our ledger types ⇄ Candid bytes of the ICRC-1/2 interface, and nothing else (pure).

``encode_*`` turn a call argument (:mod:`califusion.ledger.types`) into the ``DIDL`` message an
ICRC ledger canister expects; ``decode_*`` turn a reply message into our types. The Candid
types come from the shipped ``icrc1_ledger.did`` (DFINITY's ledger interface); the bytes are made
and read by icp-py-core's Candid implementation (through :mod:`._candid`), and the tests check
them against vectors from DFINITY's reference implementation.

A ``decode_*`` is the library's Candid decoder followed by the matching ``*_from_candid`` of
:mod:`.replies` (which the agent uses alone, as its replies arrive already decoded). Bytes that
are not Candid of the promised type, or a reply that breaks the interface's promises, raise
:class:`LedgerProtocolError`.
"""

from __future__ import annotations

from califusion.crypto.principal import Account
from califusion.ledger.icp._candid import LedgerProtocolError, decode, encode, method
from califusion.ledger.icp.replies import (
    allowance_from_candid,
    approve_result_from_candid,
    metadata_from_candid,
    minting_account_from_candid,
    nat_from_candid,
    supported_standards_from_candid,
    text_from_candid,
    transfer_from_result_from_candid,
    transfer_result_from_candid,
)
from califusion.ledger.icrc3 import Value
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

__all__ = [
    "LedgerProtocolError",
    "decode_allowance",
    "decode_approve_result",
    "decode_metadata",
    "decode_minting_account",
    "decode_nat",
    "decode_nat8",
    "decode_supported_standards",
    "decode_text",
    "decode_transfer_from_result",
    "decode_transfer_result",
    "encode_account",
    "encode_allowance_args",
    "encode_approve_args",
    "encode_no_args",
    "encode_transfer_arg",
    "encode_transfer_from_args",
]

# --- encoding ---------------------------------------------------------------------------------


def _opt(value: object | None) -> list[object]:
    return [] if value is None else [value]


def _account(account: Account) -> dict[str, object]:
    return {"owner": account.owner, "subaccount": _opt(account.subaccount)}


def _encode_single(method_name: str, value: object) -> bytes:
    return encode(method(method_name).args, [value])


def encode_no_args() -> bytes:
    """``()``: the argument of every method that takes none (``icrc1_name``, …)."""
    return encode(method("icrc1_name").args, [])


def encode_account(account: Account) -> bytes:
    """The ``icrc1_balance_of`` argument."""
    return _encode_single("icrc1_balance_of", _account(account))


def encode_transfer_arg(arg: TransferArg) -> bytes:
    """The ``icrc1_transfer`` argument."""
    return _encode_single(
        "icrc1_transfer",
        {
            "from_subaccount": _opt(arg.from_subaccount),
            "to": _account(arg.to),
            "amount": arg.amount,
            "fee": _opt(arg.fee),
            "memo": _opt(arg.memo),
            "created_at_time": _opt(arg.created_at_time),
        },
    )


def encode_approve_args(arg: ApproveArgs) -> bytes:
    """The ``icrc2_approve`` argument."""
    return _encode_single(
        "icrc2_approve",
        {
            "from_subaccount": _opt(arg.from_subaccount),
            "spender": _account(arg.spender),
            "amount": arg.amount,
            "expected_allowance": _opt(arg.expected_allowance),
            "expires_at": _opt(arg.expires_at),
            "fee": _opt(arg.fee),
            "memo": _opt(arg.memo),
            "created_at_time": _opt(arg.created_at_time),
        },
    )


def encode_transfer_from_args(arg: TransferFromArgs) -> bytes:
    """The ``icrc2_transfer_from`` argument."""
    return _encode_single(
        "icrc2_transfer_from",
        {
            "spender_subaccount": _opt(arg.spender_subaccount),
            "from": _account(arg.from_),
            "to": _account(arg.to),
            "amount": arg.amount,
            "fee": _opt(arg.fee),
            "memo": _opt(arg.memo),
            "created_at_time": _opt(arg.created_at_time),
        },
    )


def encode_allowance_args(arg: AllowanceArgs) -> bytes:
    """The ``icrc2_allowance`` argument."""
    return _encode_single(
        "icrc2_allowance", {"account": _account(arg.account), "spender": _account(arg.spender)}
    )


# --- bytes → our types ------------------------------------------------------------------------


def _decode_single(method_name: str, data: bytes) -> object:
    (value,) = decode(data, method(method_name).rets)
    return value


def decode_transfer_result(data: bytes) -> TransferResult:
    """An ``icrc1_transfer`` reply."""
    return transfer_result_from_candid(_decode_single("icrc1_transfer", data))


def decode_approve_result(data: bytes) -> ApproveResult:
    """An ``icrc2_approve`` reply."""
    return approve_result_from_candid(_decode_single("icrc2_approve", data))


def decode_transfer_from_result(data: bytes) -> TransferFromResult:
    """An ``icrc2_transfer_from`` reply."""
    return transfer_from_result_from_candid(_decode_single("icrc2_transfer_from", data))


def decode_nat(data: bytes) -> int:
    """A ``nat`` reply (``icrc1_balance_of``, ``icrc1_fee``, ``icrc1_total_supply``)."""
    return nat_from_candid(_decode_single("icrc1_balance_of", data))


def decode_nat8(data: bytes) -> int:
    """A ``nat8`` reply (``icrc1_decimals``)."""
    return nat_from_candid(_decode_single("icrc1_decimals", data))


def decode_text(data: bytes) -> str:
    """A ``text`` reply (``icrc1_name``, ``icrc1_symbol``)."""
    return text_from_candid(_decode_single("icrc1_name", data))


def decode_allowance(data: bytes) -> Allowance:
    """An ``icrc2_allowance`` reply."""
    return allowance_from_candid(_decode_single("icrc2_allowance", data))


def decode_minting_account(data: bytes) -> Account | None:
    """An ``icrc1_minting_account`` reply."""
    return minting_account_from_candid(_decode_single("icrc1_minting_account", data))


def decode_metadata(data: bytes) -> list[tuple[str, Value]]:
    """An ``icrc1_metadata`` reply."""
    return metadata_from_candid(_decode_single("icrc1_metadata", data))


def decode_supported_standards(data: bytes) -> list[StandardRecord]:
    """An ``icrc1_supported_standards`` reply."""
    return supported_standards_from_candid(_decode_single("icrc1_supported_standards", data))
