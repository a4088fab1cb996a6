"""ICRC-3 ``Value``, its representation-independent hash, and a canonical JSON form.

``Value`` is the Candid variant every ICRC-3 block is served as::

    type Value = variant { Blob : blob; Text : text; Nat : nat; Int : int;
                           Array : vec Value; Map : vec record { text; Value } };

The hash (ICRC-3 HASHINGVALUES.md, the IC interface spec's "hash of map"): Nat → SHA-256 of its
LEB128; Int → SHA-256 of its SLEB128; Text → SHA-256 of UTF-8; Blob → SHA-256 of the bytes;
Array → SHA-256 of the concatenated element hashes; Map → SHA-256 of the sorted concatenation of
``SHA-256(key) ‖ hash(value)`` pairs. The JSON form (``encode_value``) is what the store keeps; it
is canonical (sorted keys, no spaces, numbers as decimal strings), so equal values give equal text.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from califusion.core.errors import InvalidInput
from califusion.crypto.principal import Account, Principal


@dataclass(frozen=True, slots=True)
class Nat:
    value: int

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int) or self.value < 0:
            raise InvalidInput(f"Nat must be a non-negative int, got {self.value!r}")


@dataclass(frozen=True, slots=True)
class Int:
    value: int

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int):
            raise InvalidInput(f"Int must be an int, got {self.value!r}")


@dataclass(frozen=True, slots=True)
class Text:
    value: str


@dataclass(frozen=True, slots=True)
class Blob:
    value: bytes


@dataclass(frozen=True, slots=True)
class Array:
    items: tuple[Value, ...]


@dataclass(frozen=True, slots=True)
class Map:
    """A ``Map`` keeps its entries in the order given; the hash does not depend on it."""

    entries: tuple[tuple[str, Value], ...]

    @classmethod
    def of(cls, entries: Mapping[str, Value | None]) -> Map:
        """A map of the entries whose value is not ``None`` (absent optional fields)."""
        return cls(tuple((key, value) for key, value in entries.items() if value is not None))

    def get(self, key: str) -> Value | None:
        for entry_key, value in self.entries:
            if entry_key == key:
                return value
        return None

    def keys(self) -> list[str]:
        return [key for key, _ in self.entries]


Value: TypeAlias = Nat | Int | Text | Blob | Array | Map


def leb128(n: int) -> bytes:
    """Unsigned LEB128 of a natural number."""
    if n < 0:
        raise InvalidInput("LEB128 encodes natural numbers only")
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def sleb128(n: int) -> bytes:
    """Signed LEB128 of an integer."""
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7  # arithmetic shift: -1 stays -1
        done = (n == 0 and not byte & 0x40) or (n == -1 and byte & 0x40)
        out.append(byte if done else byte | 0x80)
        if done:
            return bytes(out)


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def hash_value(value: Value) -> bytes:
    """The ICRC-3 representation-independent hash (32 bytes)."""
    match value:
        case Nat(n):
            return _sha256(leb128(n))
        case Int(n):
            return _sha256(sleb128(n))
        case Text(text):
            return _sha256(text.encode("utf-8"))
        case Blob(data):
            return _sha256(data)
        case Array(items):
            return _sha256(b"".join(hash_value(item) for item in items))
        case Map(entries):
            pairs = sorted(_sha256(k.encode("utf-8")) + hash_value(v) for k, v in entries)
            return _sha256(b"".join(pairs))
    raise InvalidInput(f"not an ICRC-3 Value: {value!r}")


# --- accounts ---------------------------------------------------------------------------------


def account_value(account: Account) -> Array:
    """ICRC-3 account: ``[owner]`` or ``[owner, subaccount]`` as blobs."""
    parts: list[Value] = [Blob(account.owner.raw)]
    if account.subaccount is not None:
        parts.append(Blob(account.subaccount))
    return Array(tuple(parts))


def account_from_value(value: Value) -> Account:
    if not isinstance(value, Array) or not 1 <= len(value.items) <= 2:
        raise InvalidInput("an ICRC-3 account is an array of one or two blobs")
    if not all(isinstance(item, Blob) for item in value.items):
        raise InvalidInput("an ICRC-3 account is an array of blobs")
    owner = Principal(_blob(value.items[0]))
    subaccount = _blob(value.items[1]) if len(value.items) == 2 else None
    return Account(owner, subaccount)


def _blob(value: Value) -> bytes:
    if not isinstance(value, Blob):
        raise InvalidInput("expected a Blob")
    return value.value


# --- canonical JSON ---------------------------------------------------------------------------


def value_to_json(value: Value) -> dict[str, Any]:
    """``{"Nat": "42"}``, ``{"Blob": "<hex>"}``, ``{"Map": [[key, value], ...]}``, ..."""
    match value:
        case Nat(n):
            return {"Nat": str(n)}
        case Int(n):
            return {"Int": str(n)}
        case Text(text):
            return {"Text": text}
        case Blob(data):
            return {"Blob": data.hex()}
        case Array(items):
            return {"Array": [value_to_json(item) for item in items]}
        case Map(entries):
            ordered = sorted(entries, key=lambda entry: entry[0])
            return {"Map": [[key, value_to_json(item)] for key, item in ordered]}
    raise InvalidInput(f"not an ICRC-3 Value: {value!r}")


def value_from_json(obj: Any) -> Value:
    if not isinstance(obj, dict) or len(obj) != 1:
        raise InvalidInput("an encoded Value is an object with exactly one tag")
    ((tag, body),) = obj.items()
    try:
        if tag == "Nat":
            return Nat(_decimal(body))
        if tag == "Int":
            return Int(_decimal(body, signed=True))
        if tag == "Text" and isinstance(body, str):
            return Text(body)
        if tag == "Blob" and isinstance(body, str):
            return Blob(bytes.fromhex(body))
        if tag == "Array" and isinstance(body, list):
            return Array(tuple(value_from_json(item) for item in body))
        if tag == "Map" and isinstance(body, list):
            return Map(tuple(_map_entry(entry) for entry in body))
    except ValueError as exc:
        raise InvalidInput(f"malformed {tag} value") from exc
    raise InvalidInput(f"unknown or malformed Value tag {tag!r}")


def _decimal(body: Any, *, signed: bool = False) -> int:
    digits = body[1:] if signed and isinstance(body, str) and body.startswith("-") else body
    if not isinstance(digits, str) or not digits.isdigit():
        raise InvalidInput(f"expected a decimal string, got {body!r}")
    return int(body)


def _map_entry(entry: Any) -> tuple[str, Value]:
    if not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], str):
        raise InvalidInput("a Map entry is [key, value]")
    return entry[0], value_from_json(entry[1])


def encode_value(value: Value) -> str:
    """Canonical JSON text of a value."""
    return json.dumps(value_to_json(value), separators=(",", ":"), ensure_ascii=False)


def decode_value(text: str) -> Value:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput("encoded Value is not JSON") from exc
    return value_from_json(obj)
