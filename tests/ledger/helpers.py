"""Principals and accounts shared by the ledger tests."""

from __future__ import annotations

from califusion.crypto.principal import Account, Principal

MINTER = Principal(b"\x4d" * 10)
ALICE = Principal(b"\xa1" * 10)
BOB = Principal(b"\xb0" * 10)
CAROL = Principal(b"\xc0" * 10)
NS = 1_000_000_000
DAY_NS = 24 * 3600 * NS
DRIFT_NS = 60 * NS


def principal(n: int) -> Principal:
    return Principal(n.to_bytes(2, "big") + b"\x01" * 8)


def sub(n: int) -> bytes:
    """A 32-byte subaccount numbered ``n`` (0 is the default subaccount)."""
    return n.to_bytes(32, "big")


def acct(owner: Principal, subaccount: int | None = None) -> Account:
    return Account(owner, sub(subaccount) if subaccount is not None else None)
