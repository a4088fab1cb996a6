"""The ledger's data model: configuration, what the state machine reads, and what it returns.

:class:`LedgerView` is the read interface every store implements; :class:`Commit` is everything
one accepted call writes; :class:`Transition` pairs the call's reply with its commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeAlias, TypeVar

from califusion.core.errors import InvalidInput
from califusion.crypto.principal import Account
from califusion.ledger.blocks import Block
from califusion.ledger.types import Allowance, Err, Ok, check_nat, check_nat64

NS_PER_SECOND = 1_000_000_000
# Largest balance, allowance or supply: SQL BIGINT is signed, so 2^63 - 1 (the reference's
# default token type is u64; amounts above the cap behave as the reference's above u64::MAX).
MAX_TOKENS = 2**63 - 1

E_co = TypeVar("E_co", covariant=True)
AllowanceKey: TypeAlias = tuple[Account, Account]


@dataclass(frozen=True, slots=True)
class LedgerConfig:
    """What a ledger is: token metadata, fee, minting account and the dedup window."""

    minting_account: Account
    name: str = "CaliFusion Token"
    symbol: str = "CFT"
    decimals: int = 8
    fee: int = 10_000
    min_burn_amount: int = 10_000
    max_memo_length: int = 32
    tx_window_ns: int = 24 * 3600 * NS_PER_SECOND
    permitted_drift_ns: int = 60 * NS_PER_SECOND

    def __post_init__(self) -> None:
        for name in ("decimals", "fee", "min_burn_amount", "max_memo_length"):
            check_nat(name, getattr(self, name))
        check_nat64("tx_window_ns", self.tx_window_ns)
        check_nat64("permitted_drift_ns", self.permitted_drift_ns)
        if self.fee > MAX_TOKENS or self.min_burn_amount > MAX_TOKENS:
            raise InvalidInput("fee and min_burn_amount must fit the token cap")


@dataclass(frozen=True, slots=True)
class StoredAllowance:
    """An allowance as stored: it counts only while ``expires_at`` is in the future."""

    amount: int
    expires_at: int | None
    arrived_at: int

    def current(self, now_ns: int) -> int:
        return self.amount if self.expires_at is None or self.expires_at > now_ns else 0


@dataclass(frozen=True, slots=True)
class ChainTip:
    """The end of the chain: next block index, last block hash and time, total supply."""

    length: int = 0
    last_hash: bytes | None = None
    last_timestamp: int | None = None
    total_supply: int = 0


class LedgerView(Protocol):
    """What the state machine reads. Stores implement it inside their write transaction."""

    def tip(self) -> ChainTip: ...

    def balance_of(self, account: Account) -> int: ...

    def allowance_of(self, account: Account, spender: Account) -> StoredAllowance | None: ...

    def find_transaction(self, tx_hash: bytes) -> int | None:
        """Index of the block whose ``tx`` hashes to ``tx_hash``, if it is still remembered."""
        ...


@dataclass(frozen=True, slots=True)
class Commit:
    """Everything one accepted call writes, in one transaction."""

    index: int
    block: Block
    block_hash: bytes
    balances: Mapping[Account, int]
    allowances: Mapping[AllowanceKey, StoredAllowance | None]
    dedup_hash: bytes | None
    total_supply: int


@dataclass(frozen=True, slots=True)
class Transition(Generic[E_co]):
    """The reply to a call, and what to write if it succeeded (``None`` when refused)."""

    result: Ok | Err[E_co]
    commit: Commit | None = field(default=None)


def current_allowance(stored: StoredAllowance | None, now_ns: int) -> Allowance:
    """The ``icrc2_allowance`` reply: nothing, or an expired allowance, reads as 0."""
    if stored is None or stored.current(now_ns) == 0:
        return Allowance(0, None)
    return Allowance(stored.amount, stored.expires_at)
