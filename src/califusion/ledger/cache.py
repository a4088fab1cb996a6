"""The ledger's state in memory, for the one writer: what the tables hold, without the queries.

:class:`LedgerCache` mirrors the tables exactly — non-zero balances, allowances, the dedup
index, the tip — and is loaded from the store in one transaction. :class:`BatchView` lays one
batch's changes over it: the state machine reads through the view (it is a
:class:`~califusion.ledger.model.LedgerView`), each accepted :class:`Commit` is applied to the
overlay, and only once the batch is durable are the changes merged into the cache. A batch
that fails to commit is dropped with its overlay, and the writer reloads the cache from the
store, which stays the source of truth.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from califusion.core.errors import Conflict
from califusion.crypto.principal import Account
from califusion.ledger.model import AllowanceKey, ChainTip, Commit, StoredAllowance
from califusion.ledger.sql_read import DedupEntry, StoreReader


@dataclass(frozen=True, slots=True)
class BalanceChange:
    account: Account
    old: int
    new: int


@dataclass(frozen=True, slots=True)
class AllowanceChange:
    key: AllowanceKey
    old: StoredAllowance | None
    new: StoredAllowance | None


class LedgerCache:
    """Balances, allowances, remembered transactions and the tip, as last committed."""

    def __init__(
        self,
        tip: ChainTip,
        balances: dict[Account, int],
        allowances: dict[AllowanceKey, StoredAllowance],
        dedup: Iterable[DedupEntry] = (),
    ) -> None:
        self.tip = tip
        self.balances = balances
        self.allowances = allowances
        self.dedup: dict[bytes, int] = {}
        # (block time, tx hash) in block order: block times never decrease, so the oldest
        # entries are always at the left end.
        self._by_time: deque[tuple[int, bytes]] = deque()
        for entry in sorted(dedup, key=lambda e: (e.block_ts, e.block_index)):
            self._remember(entry)

    @classmethod
    def load(cls, reader: StoreReader, tip: ChainTip) -> LedgerCache:
        """Everything ``reader`` sees, with the (already locked) ``tip``."""
        return cls(tip, reader.balances(), reader.allowances(), reader.dedup_entries())

    def _remember(self, entry: DedupEntry) -> None:
        self.dedup[entry.tx_hash] = entry.block_index
        self._by_time.append((entry.block_ts, entry.tx_hash))

    def forget_transactions_before(self, block_ts: int) -> None:
        """Drop dedup entries of blocks made before ``block_ts``; a call that old is TooOld."""
        while self._by_time and self._by_time[0][0] < block_ts:
            _, tx_hash = self._by_time.popleft()
            self.dedup.pop(tx_hash, None)

    def merge(self, view: BatchView) -> None:
        """Make a committed batch part of the cache."""
        for change in view.balance_changes():
            if change.new:
                self.balances[change.account] = change.new
            else:
                self.balances.pop(change.account, None)
        for allowance in view.allowance_changes():
            if allowance.new is not None:
                self.allowances[allowance.key] = allowance.new
            else:
                self.allowances.pop(allowance.key, None)
        for entry in view.dedup_entries():
            self._remember(entry)
        self.tip = view.tip()


class BatchView:
    """One batch's changes over a :class:`LedgerCache`; the cache is untouched until merged.

    ``predecessors`` are batches applied before this one and not yet merged (a pipelined
    writer runs the next batch while the previous one commits): reads go through this batch's
    changes, then theirs, newest first, then the cache. Merging a predecessor moves its values
    into the cache without removing them from the predecessor, so a read sees the same value
    before and after.
    """

    def __init__(self, cache: LedgerCache, predecessors: Sequence[BatchView] = ()) -> None:
        self._cache = cache
        self._before = tuple(reversed(predecessors))  # newest first
        self._tip = predecessors[-1].tip() if predecessors else cache.tip
        self.base_tip = self._tip
        self.commits: list[Commit] = []
        # The commits' rows as the store writes them, made where the rules run (a pipelined
        # writer makes them while the batch before is being flushed).
        self.block_rows: list[tuple[Any, ...]] = []
        self._balances: dict[Account, int] = {}
        self._allowances: dict[AllowanceKey, StoredAllowance | None] = {}
        self._dedup: dict[bytes, DedupEntry] = {}

    # --- LedgerView ---------------------------------------------------------------------------

    def tip(self) -> ChainTip:
        return self._tip

    def balance_of(self, account: Account) -> int:
        amount = self._balances.get(account)
        if amount is not None:
            return amount
        for view in self._before:
            amount = view._balances.get(account)
            if amount is not None:
                return amount
        return self._cache.balances.get(account, 0)

    def allowance_of(self, account: Account, spender: Account) -> StoredAllowance | None:
        key = (account, spender)
        for view in (self, *self._before):
            if key in view._allowances:
                return view._allowances[key]
        return self._cache.allowances.get(key)

    def find_transaction(self, tx_hash: bytes) -> int | None:
        for view in (self, *self._before):
            entry = view._dedup.get(tx_hash)
            if entry is not None:
                return entry.block_index
        return self._cache.dedup.get(tx_hash)

    # --- the batch ----------------------------------------------------------------------------

    def apply(self, commit: Commit) -> None:
        """Record an accepted call; the next call of the batch sees its effects."""
        tip = self._tip
        if commit.index != tip.length or commit.block.parent_hash != tip.last_hash:
            raise Conflict(f"block {commit.index} does not extend the chain tip {tip.length}")
        self.commits.append(commit)
        self._balances.update(commit.balances)
        self._allowances.update(commit.allowances)
        timestamp = commit.block.timestamp
        if commit.dedup_hash is not None:
            entry = DedupEntry(commit.dedup_hash, commit.index, timestamp)
            self._dedup[commit.dedup_hash] = entry
        self._tip = ChainTip(commit.index + 1, commit.block_hash, timestamp, commit.total_supply)

    def balance_changes(self) -> list[BalanceChange]:
        """Each account whose balance the batch changed, once, with its value before and after
        (call it once every predecessor is merged: "before" is read from the cache)."""
        cached = self._cache.balances
        changes = (BalanceChange(a, cached.get(a, 0), new) for a, new in self._balances.items())
        return [change for change in changes if change.old != change.new]

    def allowance_changes(self) -> list[AllowanceChange]:
        cached = self._cache.allowances
        changes = (AllowanceChange(k, cached.get(k), new) for k, new in self._allowances.items())
        return [change for change in changes if change.old != change.new]

    def dedup_entries(self) -> list[DedupEntry]:
        return list(self._dedup.values())

    def detach(self) -> None:
        """Forget the predecessors once merged or dropped, so old batches can be freed."""
        self._before = ()
