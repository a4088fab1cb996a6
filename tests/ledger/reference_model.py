"""A plain-Python model of the ledger: a second, deliberately simple reading of the rules.

It follows ICRC.md and the reference ledger's order of checks, but shares no code with
``califusion.ledger.state``: balances, allowances and the dedup memory are dicts, and a call the
reference would trap on answers ``"reject"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from califusion.crypto.principal import Account
from califusion.ledger import (
    MAX_TOKENS,
    AllowanceChanged,
    BadBurn,
    BadFee,
    CreatedInFuture,
    Duplicate,
    Err,
    Expired,
    InsufficientAllowance,
    InsufficientFunds,
    Ok,
    TooOld,
)

from .helpers import DAY_NS, DRIFT_NS, MINTER, principal, sub

FEE, MIN_BURN = 10_000, 10_000
USERS = [principal(1), principal(2), principal(3)]
CALLERS = [MINTER, *USERS]
SUBS: list[bytes | None] = [None, sub(1)]
ACCOUNTS = [Account(owner, s) for owner in CALLERS for s in SUBS]
MINTING = Account(MINTER)

Result = Any  # Ok | Err[...] | "reject"


@dataclass
class Model:
    """The ledger in plain Python."""

    balances: dict[Account, int] = field(default_factory=dict)
    allowances: dict[tuple[Account, Account], tuple[int, int | None]] = field(default_factory=dict)
    seen: dict[tuple[Any, ...], int] = field(default_factory=dict)
    supply: int = 0
    length: int = 0

    def bal(self, account: Account) -> int:
        return self.balances.get(account, 0)

    def allowance(self, owner: Account, spender: Account, now: int) -> int:
        amount, expires_at = self.allowances.get((owner, spender), (0, None))
        return amount if expires_at is None or expires_at > now else 0

    def _dedup(self, key: tuple[Any, ...], cat: int | None, now: int) -> Result | None:
        if cat is None:
            return None
        if cat + DAY_NS < now:
            return Err(TooOld())
        if cat > now + DRIFT_NS:
            return Err(CreatedInFuture(now))
        if key in self.seen:
            return Err(Duplicate(self.seen[key]))
        return None

    def _accept(self, key: tuple[Any, ...], cat: int | None) -> Ok:
        if cat is not None:
            self.seen[key] = self.length
        self.length += 1
        return Ok(self.length - 1)

    def transfer(
        self,
        frm: Account,
        spender: Account | None,
        to: Account,
        amount: int,
        fee: int | None,
        memo: bytes | None,
        cat: int | None,
        now: int,
    ) -> Result:
        if memo is not None and len(memo) > 32:
            return "reject"
        if amount > MAX_TOKENS:
            return Err(InsufficientFunds(self.bal(frm)))
        if to == MINTING:
            if fee not in (None, 0):
                return Err(BadFee(0))
            if amount < min(MIN_BURN, self.bal(frm)):
                return Err(BadBurn(min(MIN_BURN, self.bal(frm))))
            if amount == 0:
                return Err(BadBurn(MIN_BURN))
            op, charged = "burn", 0
            key: tuple[Any, ...] = ("burn", frm, spender, amount, memo, cat)
        elif frm == MINTING:
            if spender is not None:
                return "reject"
            if fee not in (None, 0):
                return Err(BadFee(0))
            op, charged = "mint", 0
            key = ("mint", to, amount, memo, cat)
        else:
            if fee not in (None, FEE):
                return Err(BadFee(FEE))
            op, charged = "xfer", FEE
            key = ("xfer", frm, to, spender, amount, fee, memo, cat)
        refused = self._dedup(key, cat, now)
        if refused is not None:
            return refused
        if op == "mint":
            if self.supply + amount > MAX_TOKENS:
                return "reject"
            self.balances[to] = self.bal(to) + amount
            self.supply += amount
            return self._accept(key, cat)
        need = amount + charged
        delegated = spender is not None and spender != frm
        if delegated:
            assert spender is not None
            current = self.allowance(frm, spender, now)
            if current < need:
                return Err(InsufficientAllowance(current))
        if self.bal(frm) < need:
            return Err(InsufficientFunds(self.bal(frm)))
        self.balances[frm] = self.bal(frm) - need
        if delegated:
            assert spender is not None
            left, expires_at = self.allowances.pop((frm, spender))
            if left - need:
                self.allowances[(frm, spender)] = (left - need, expires_at)
        if op == "xfer":
            self.balances[to] = self.bal(to) + amount
        self.supply -= need
        if op == "xfer":
            self.supply += amount
        return self._accept(key, cat)

    def approve(
        self,
        frm: Account,
        spender: Account,
        amount: int,
        expected: int | None,
        expires_at: int | None,
        fee: int | None,
        memo: bytes | None,
        cat: int | None,
        now: int,
    ) -> Result:
        if frm.owner == spender.owner or frm == MINTING or (memo is not None and len(memo) > 32):
            return "reject"
        amount = min(amount, MAX_TOKENS)
        if expected is not None and expected > MAX_TOKENS:
            return Err(AllowanceChanged(self.allowance(frm, spender, now)))
        if fee not in (None, FEE):
            return Err(BadFee(FEE))
        key = ("approve", frm, spender, amount, expected, expires_at, fee, memo, cat)
        refused = self._dedup(key, cat, now)
        if refused is not None:
            return refused
        if self.bal(frm) < FEE:
            return Err(InsufficientFunds(self.bal(frm)))
        if expires_at is not None and expires_at <= now:
            return Err(Expired(now))
        current = self.allowance(frm, spender, now)
        if expected is not None and expected != current:
            return Err(AllowanceChanged(current))
        self.balances[frm] = self.bal(frm) - FEE
        self.supply -= FEE
        self.allowances.pop((frm, spender), None)
        if amount:
            self.allowances[(frm, spender)] = (amount, expires_at)
        return self._accept(key, cat)
