"""The recorded Candid vectors (vectors.json) and their meaning as our ledger types.

vectors.json is written by tools/candid-vectors/make_vectors.mjs with DFINITY's reference
implementation (@dfinity/candid): each vector has the reference bytes (``hex``) of ``value`` under
the Candid type ``type``; each call argument also has ``ours_hex``, our codec's bytes, which the
reference decoder decoded back to exactly ``value`` when the file was written.

Run as a script, this module prints our encoding of every argument vector as JSON: step 2 of
regenerating the file (see the header of make_vectors.mjs)::

    .venv/bin/python tests/ledger/icp/vectors.py > /tmp/ours.json
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from califusion.crypto.principal import Account, Principal
from califusion.ledger.icp import candid_codec
from califusion.ledger.icrc3 import Blob, Int, Nat, Text, Value
from califusion.ledger.types import (
    Allowance,
    AllowanceArgs,
    AllowanceChanged,
    ApproveArgs,
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
    TransferArg,
    TransferFromArgs,
)

VECTORS_PATH = Path(__file__).with_name("vectors.json")


@dataclass(frozen=True)
class Vector:
    name: str
    kind: str  # "arg" or "reply"
    type: str
    reference: bytes
    value: Any
    ours: bytes | None


def load() -> list[Vector]:
    document = json.loads(VECTORS_PATH.read_text(encoding="utf-8"))
    return [
        Vector(
            name=item["name"],
            kind=item["kind"],
            type=item["type"],
            reference=bytes.fromhex(item["hex"]),
            value=item["value"],
            ours=bytes.fromhex(item["ours_hex"]) if "ours_hex" in item else None,
        )
        for item in document["vectors"]
    ]


def args() -> list[Vector]:
    return [vector for vector in load() if vector.kind == "arg"]


def replies() -> list[Vector]:
    return [vector for vector in load() if vector.kind == "reply"]


# --- JSON form → our types (independent of the codec under test) -------------------------------


def _nat(text: str) -> int:
    return int(text)


def _blob(value: dict[str, str]) -> bytes:
    return bytes.fromhex(value["blob"])


def _principal(value: dict[str, str]) -> Principal:
    return Principal.from_text(value["principal"])


def _opt(value: list[Any], convert: Callable[[Any], Any]) -> Any:
    assert len(value) <= 1
    return convert(value[0]) if value else None


def account(value: dict[str, Any]) -> Account:
    return Account(_principal(value["owner"]), _opt(value["subaccount"], _blob))


def transfer_arg(value: dict[str, Any]) -> TransferArg:
    return TransferArg(
        to=account(value["to"]),
        amount=_nat(value["amount"]),
        from_subaccount=_opt(value["from_subaccount"], _blob),
        fee=_opt(value["fee"], _nat),
        memo=_opt(value["memo"], _blob),
        created_at_time=_opt(value["created_at_time"], _nat),
    )


def approve_args(value: dict[str, Any]) -> ApproveArgs:
    return ApproveArgs(
        spender=account(value["spender"]),
        amount=_nat(value["amount"]),
        from_subaccount=_opt(value["from_subaccount"], _blob),
        expected_allowance=_opt(value["expected_allowance"], _nat),
        expires_at=_opt(value["expires_at"], _nat),
        fee=_opt(value["fee"], _nat),
        memo=_opt(value["memo"], _blob),
        created_at_time=_opt(value["created_at_time"], _nat),
    )


def transfer_from_args(value: dict[str, Any]) -> TransferFromArgs:
    return TransferFromArgs(
        from_=account(value["from"]),
        to=account(value["to"]),
        amount=_nat(value["amount"]),
        spender_subaccount=_opt(value["spender_subaccount"], _blob),
        fee=_opt(value["fee"], _nat),
        memo=_opt(value["memo"], _blob),
        created_at_time=_opt(value["created_at_time"], _nat),
    )


def allowance_args(value: dict[str, Any]) -> AllowanceArgs:
    return AllowanceArgs(account=account(value["account"]), spender=account(value["spender"]))


_ERRORS: dict[str, Callable[[Any], object]] = {
    "BadFee": lambda p: BadFee(_nat(p["expected_fee"])),
    "BadBurn": lambda p: BadBurn(_nat(p["min_burn_amount"])),
    "InsufficientFunds": lambda p: InsufficientFunds(_nat(p["balance"])),
    "InsufficientAllowance": lambda p: InsufficientAllowance(_nat(p["allowance"])),
    "TooOld": lambda p: TooOld(),
    "CreatedInFuture": lambda p: CreatedInFuture(_nat(p["ledger_time"])),
    "Duplicate": lambda p: Duplicate(_nat(p["duplicate_of"])),
    "TemporarilyUnavailable": lambda p: TemporarilyUnavailable(),
    "GenericError": lambda p: GenericError(_nat(p["error_code"]), p["message"]),
    "AllowanceChanged": lambda p: AllowanceChanged(_nat(p["current_allowance"])),
    "Expired": lambda p: Expired(_nat(p["ledger_time"])),
}


def result(value: dict[str, Any]) -> object:
    ((case, payload),) = value.items()
    if case == "Ok":
        return Ok(_nat(payload))
    ((error, error_payload),) = payload.items()
    return Err(_ERRORS[error](error_payload))


def _metadata_value(value: dict[str, Any]) -> Value:
    ((case, payload),) = value.items()
    if case == "Nat":
        return Nat(_nat(payload))
    if case == "Int":
        return Int(int(payload))
    if case == "Text":
        return Text(payload)
    return Blob(_blob(payload))


def allowance(value: dict[str, Any]) -> Allowance:
    return Allowance(_nat(value["allowance"]), _opt(value["expires_at"], _nat))


EXPECTED: dict[str, Callable[[Any], object]] = {
    "()": lambda value: None,
    "Account": account,
    "TransferArg": transfer_arg,
    "ApproveArgs": approve_args,
    "TransferFromArgs": transfer_from_args,
    "AllowanceArgs": allowance_args,
    "TransferResult": result,
    "ApproveResult": result,
    "TransferFromResult": result,
    "Allowance": allowance,
    "AllowanceWithExtraField": allowance,
    "nat": _nat,
    "nat8": int,
    "text": str,
    "opt Account": lambda value: _opt(value, account),
    "vec record { text; MetadataValue }": lambda value: [
        (key, _metadata_value(item)) for key, item in value
    ],
    "vec StandardRecord": lambda value: [StandardRecord(r["name"], r["url"]) for r in value],
}


def expected(vector: Vector) -> object:
    """The vector's ``value`` as our types (``None`` for the empty argument list)."""
    return EXPECTED[vector.type](vector.value)


# --- our encoding of an argument vector ---------------------------------------------------------


def encode_ours(vector: Vector) -> bytes:
    """Our codec's bytes for an argument vector."""
    value = expected(vector)
    if isinstance(value, TransferArg):
        return candid_codec.encode_transfer_arg(value)
    if isinstance(value, ApproveArgs):
        return candid_codec.encode_approve_args(value)
    if isinstance(value, TransferFromArgs):
        return candid_codec.encode_transfer_from_args(value)
    if isinstance(value, AllowanceArgs):
        return candid_codec.encode_allowance_args(value)
    if isinstance(value, Account):
        return candid_codec.encode_account(value)
    assert value is None, vector.name
    return candid_codec.encode_no_args()


# --- the parts of a Candid message --------------------------------------------------------------


def _uleb(data: bytes, at: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[at]
        at += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, at


def _sleb(data: bytes, at: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[at]
        at += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            if byte & 0x40:
                result -= 1 << shift
            return result, at


def split_message(data: bytes) -> tuple[bytes, list[int], bytes]:
    """(type table, argument type references, value bytes) of a ``DIDL`` message.

    Handles the type constructors the ledger interface uses (opt, vec, record, variant).
    """
    assert data[:4] == b"DIDL"
    at = 4
    count, at = _uleb(data, at)
    for _ in range(count):
        opcode, at = _sleb(data, at)
        if opcode in (-18, -19):  # opt, vec
            _, at = _sleb(data, at)
        elif opcode in (-20, -21):  # record, variant
            fields, at = _uleb(data, at)
            for _ in range(fields):
                _, at = _uleb(data, at)
                _, at = _sleb(data, at)
        else:
            raise AssertionError(f"type constructor {opcode} is not used by the ledger")
    table_end = at
    arg_count, at = _uleb(data, at)
    refs = []
    for _ in range(arg_count):
        ref, at = _sleb(data, at)
        refs.append(ref)
    return data[4:table_end], refs, data[at:]


def main() -> None:
    """Print ``{name: our hex}`` for every argument vector (regeneration step 2)."""
    ours = {vector.name: encode_ours(vector).hex() for vector in args()}
    json.dump(ours, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
