"""ICP principals and ICRC-1 accounts in their textual forms.

Written here because neither Python IC agent library has ICRC-1 textual accounts
(``owner-checksum.subaccount``), and principals are needed by layers that must not depend on
an IC agent. Formats follow the IC interface spec and ICRC-1's TextualEncoding.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from califusion.core.errors import InvalidInput

ED25519_DER_PREFIX = bytes.fromhex("302a300506032b6570032100")
SELF_AUTHENTICATING_TAG = b"\x02"
MAX_PRINCIPAL_BYTES = 29
SUBACCOUNT_BYTES = 32
_ZERO_SUBACCOUNT = bytes(SUBACCOUNT_BYTES)


def _crc32_be(data: bytes) -> bytes:
    return (binascii.crc32(data) & 0xFFFFFFFF).to_bytes(4, "big")


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").lower().rstrip("=")


def _unb32(text: str) -> bytes:
    if text != text.lower():
        raise InvalidInput(f"not canonical lowercase base32: {text!r}")
    padded = text.upper() + "=" * (-len(text) % 8)
    try:
        return base64.b32decode(padded)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(f"not base32: {text!r}") from exc


@dataclass(frozen=True, slots=True)
class Principal:
    """An Internet Computer principal: at most 29 raw bytes."""

    raw: bytes

    def __post_init__(self) -> None:
        if len(self.raw) > MAX_PRINCIPAL_BYTES:
            raise InvalidInput(f"a principal is at most 29 bytes, got {len(self.raw)}")

    @classmethod
    def self_authenticating(cls, ed25519_public_raw: bytes) -> Principal:
        """The principal of an Ed25519 key: SHA-224(DER public key) ‖ 0x02."""
        if len(ed25519_public_raw) != 32:
            raise InvalidInput("an Ed25519 public key is 32 bytes")
        der = ED25519_DER_PREFIX + ed25519_public_raw
        return cls(hashlib.sha224(der).digest() + SELF_AUTHENTICATING_TAG)

    @classmethod
    def anonymous(cls) -> Principal:
        return cls(b"\x04")

    def to_text(self) -> str:
        encoded = _b32(_crc32_be(self.raw) + self.raw)
        return "-".join(encoded[i : i + 5] for i in range(0, len(encoded), 5))

    @classmethod
    def from_text(cls, text: str) -> Principal:
        compact = text.replace("-", "")
        data = _unb32(compact)
        if len(data) < 4:
            raise InvalidInput(f"principal text too short: {text!r}")
        principal = cls(data[4:])
        if principal.to_text() != text:
            raise InvalidInput(f"principal text has a bad checksum or is not canonical: {text!r}")
        return principal

    def __str__(self) -> str:
        return self.to_text()


@dataclass(frozen=True, slots=True)
class Account:
    """An ICRC-1 account. A null subaccount and 32 zero bytes are the same account."""

    owner: Principal
    subaccount: bytes | None = None

    def __post_init__(self) -> None:
        if self.subaccount is not None:
            if len(self.subaccount) != SUBACCOUNT_BYTES:
                raise InvalidInput(f"a subaccount is exactly 32 bytes, got {len(self.subaccount)}")
            if self.subaccount == _ZERO_SUBACCOUNT:
                object.__setattr__(self, "subaccount", None)

    @property
    def effective_subaccount(self) -> bytes:
        return self.subaccount if self.subaccount is not None else _ZERO_SUBACCOUNT

    def to_text(self) -> str:
        owner_text = self.owner.to_text()
        if self.subaccount is None:
            return owner_text
        checksum = _b32(_crc32_be(self.owner.raw + self.subaccount))
        return f"{owner_text}-{checksum}.{self.subaccount.hex().lstrip('0')}"

    @classmethod
    def from_text(cls, text: str) -> Account:
        if "." not in text:
            return cls(Principal.from_text(text))
        head, sub_hex = text.rsplit(".", 1)
        if "-" not in head:
            raise InvalidInput(f"account text lacks a checksum: {text!r}")
        owner_text, _checksum = head.rsplit("-", 1)
        if not sub_hex or sub_hex.startswith("0") or len(sub_hex) > 2 * SUBACCOUNT_BYTES:
            raise InvalidInput(f"subaccount hex is not canonical: {text!r}")
        try:
            subaccount = bytes.fromhex(sub_hex.rjust(2 * SUBACCOUNT_BYTES, "0"))
        except ValueError as exc:
            raise InvalidInput(f"subaccount is not hex: {text!r}") from exc
        account = cls(Principal.from_text(owner_text), subaccount)
        if account.subaccount is None or account.to_text() != text:
            raise InvalidInput(f"account text has a bad checksum or is not canonical: {text!r}")
        return account

    def __str__(self) -> str:
        return self.to_text()
