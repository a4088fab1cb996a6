"""One writer per ledger, committing update calls in pipelined batches: :class:`GroupCommit`.

Why: a ledger call is some tens of microseconds of rules and a few milliseconds of commit (a
disk flush, a round trip). Committing each call on its own caps a ledger at a few hundred calls
per second, whatever the hardware. Here concurrent calls queue up; one of the waiting threads —
the *leader* — takes everything queued, runs the pure state machine for each call in order
against the in-memory state (:class:`~califusion.ledger.cache.LedgerCache`), writes all the
accepted commits in **one** transaction, and only then answers every caller of the batch. A
reply therefore always describes a durable block, exactly as with one transaction per call.

Pipelined: while one batch commits, the next leader keeps collecting the calls that arrive
and runs their rules at once — speculatively, on top of the batch still committing — so the
rules overlap the disk flush. When its turn comes it passes the lead on and commits
everything it collected; batches commit strictly in order. Under the tip lock each batch
checks that the chain tip in the database is the one its speculation started from; if not (the
batch before failed, another process wrote), it reloads the state and runs its calls again
before writing. Speculation only ever saves time: what is written was always computed from the
committed state.

There is no background thread: whoever calls is the leader when none is active (the writer
queue of LevelDB and of many group-commit databases), so a ledger needs no start or stop.

The model is one writer per ledger, like a canister: the cache is trusted only while the tip
in the database is the one this writer last wrote, so a second writer on the same database
(two servers, a restore) stays correct, only slower. If a batch cannot be committed, its
callers get the error, its changes are dropped and the state is reloaded from the database,
the source of truth.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from califusion.ledger.cache import BatchView, LedgerCache
from califusion.ledger.model import LedgerConfig, LedgerView, Transition
from califusion.ledger.sql_write import block_row
from califusion.ledger.store import LedgerStore
from califusion.ledger.types import Err, Ok

log = logging.getLogger(__name__)

E = TypeVar("E")
# Dedup entries older than the window are dropped from the database every this many blocks.
# Keeping them longer changes nothing: a call that old is TooOld before its hash is looked up.
DEDUP_PRUNE_INTERVAL = 64
DEFAULT_MAX_BATCH = 1000


def _held_lock() -> Any:
    lock = threading.Lock()
    lock.acquire()
    return lock


@dataclass(eq=False, slots=True)
class _Call(Generic[E]):
    run: Callable[[LedgerView, int], Transition[E]]
    # Released when the call is done, or when it is handed the lead (it then heads the queue).
    # A bare lock is the cheapest one-shot signal between threads (an Event is ten times dearer).
    wake: Any = field(default_factory=_held_lock)
    done: bool = False
    result: Ok | Err[E] | None = None
    error: BaseException | None = None

    def outcome(self) -> Ok | Err[E]:
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


Outcome = tuple["_Call[Any]", "Ok | Err[Any] | None", "BaseException | None"]


@dataclass(eq=False, slots=True)
class _Batch:
    seq: int
    calls: list[_Call[Any]]
    started: bool = False  # its first calls have been run (or found nothing to run on)
    generation: int = 0
    view: BatchView | None = None  # the speculation, when there was a state to run on
    outcomes: list[Outcome] = field(default_factory=list)


class GroupCommit:
    """Serializes a ledger's update calls and commits them in batches of up to ``max_batch``.

    ``now_ns`` is the ledger clock, read once per batch; a call runs at ``max(now, time of the
    last block)``, so block times never go backwards.
    """

    def __init__(
        self,
        store: LedgerStore,
        config: LedgerConfig,
        now_ns: Callable[[], int],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._store = store
        self._config = config
        self._now_ns = now_ns
        self._max_batch = max_batch
        # The queue, the lead and the commit turn: a leader waits on it for calls or its turn.
        self._cv = threading.Condition()
        self._queue: list[_Call[Any]] = []
        self._leading = False
        self._next_seq = 0  # the leader's alone
        self._committing = 0  # the batch whose turn it is to commit
        self._state = threading.Lock()  # what follows
        self._cache: LedgerCache | None = None
        self._inflight: list[BatchView] = []  # speculated, not yet merged, oldest first
        self._generation = 0  # bumped whenever speculations in flight become void
        self.batches = 0  # committed batches, calls seen, batches run again: for benchmarks
        self.calls = 0
        self.reruns = 0

    @property
    def pending(self) -> int:
        """Calls waiting for a batch (not counting the batches being run or committed)."""
        with self._cv:
            return len(self._queue)

    def submit(self, run: Callable[[LedgerView, int], Transition[E]]) -> Ok | Err[E]:
        """Run one update call; return once its block (if any) is committed.

        The first caller to find no leader leads; the others sleep on their own lock until
        their call is done, or until they are handed the lead (they then head the queue, so
        their call is in the batch they run).
        """
        call: _Call[E] = _Call(run)
        with self._cv:
            self._queue.append(call)
            lead = not self._leading
            self._leading = True
            if not lead:
                self._cv.notify_all()  # the leader collects it
        if not lead:
            call.wake.acquire()
            if call.done:
                return call.outcome()
        self._lead()
        return call.outcome()

    # --- the two stages -----------------------------------------------------------------------

    def _lead(self) -> None:
        batch = _Batch(self._next_seq, [])
        self._next_seq += 1
        try:
            self._collect(batch)
        finally:
            with self._cv:  # the next batch collects calls while this one commits
                if self._queue:
                    self._queue[0].wake.release()
                else:
                    self._leading = False
            self._commit_in_turn(batch)

    def _collect(self, batch: _Batch) -> None:
        """Take the queued calls and run their rules, again as more arrive, until it is this
        batch's turn to commit (or it is full)."""
        while True:
            with self._cv:
                while not self._queue and self._committing != batch.seq:
                    self._cv.wait()
                room = self._max_batch - len(batch.calls)
                calls = self._queue[:room]
                del self._queue[:room]
                turn = self._committing == batch.seq
            if calls:
                batch.calls += calls
                self._speculate(batch, calls)
            if turn or len(batch.calls) >= self._max_batch:
                return

    def _speculate(self, batch: _Batch, calls: list[_Call[Any]]) -> None:
        with self._state:
            if not batch.started:  # the batch's first calls: start its view
                batch.started = True
                batch.generation = self._generation
                if self._cache is not None:
                    batch.view = BatchView(self._cache, self._inflight)
                    self._inflight.append(batch.view)
            if batch.generation != self._generation:
                batch.view = None  # what it stood on is gone: the calls run at commit time
            view = batch.view
        if view is not None:
            batch.outcomes += self._run_calls(view, calls)

    def _run_calls(self, view: BatchView, calls: list[_Call[Any]]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        clock = self._now_ns()  # one reading per batch: its calls share a ledger time
        for call in calls:
            now = max(clock, view.tip().last_timestamp or 0)
            try:
                transition = call.run(view, now)
            except Exception as exc:  # refused outright (InvalidInput): this call only
                outcomes.append((call, None, exc))
                continue
            if transition.commit is not None:
                view.apply(transition.commit)
                view.block_rows.append(block_row(transition.commit))
            outcomes.append((call, transition.result, None))
        return outcomes

    def _commit_in_turn(self, batch: _Batch) -> None:
        with self._cv:
            while self._committing != batch.seq:  # only if collecting was cut short
                self._cv.wait()
        try:
            self._commit(batch)
        finally:
            self.calls += len(batch.calls)
            with self._cv:
                self._committing += 1
                self._cv.notify_all()
            for call in batch.calls:
                call.done = True
                call.wake.release()

    def _commit(self, batch: _Batch) -> None:
        view = batch.view
        try:
            with self._store.write() as (writer, tip):
                with self._state:
                    cache = self._cache
                    fresh = (
                        view is not None
                        and batch.generation == self._generation
                        and cache is not None
                        and cache.tip == tip == view.base_tip
                    )
                if not fresh:
                    view, cache = self._rerun(batch, writer, tip, cache)
                assert view is not None and cache is not None
                writer.write(view)
                horizon = self._prune_horizon(view)
                if horizon is not None:
                    writer.forget_transactions_before(horizon)
        except BaseException as exc:
            with self._state:
                self._cache = None  # the database is the truth: reload it for the next batch
                self._void_inflight()
            own_errors = {id(call): error for call, _, error in batch.outcomes if error}
            for call in batch.calls:
                call.error = own_errors.get(id(call), exc)
            if not isinstance(exc, Exception):
                raise
            return
        with self._state:
            cache.merge(view)
            if horizon is not None:
                cache.forget_transactions_before(horizon)
            if view in self._inflight:
                self._inflight.remove(view)
            view.detach()
        assert len(batch.outcomes) == len(batch.calls)
        for call, result, error in batch.outcomes:
            call.result, call.error = result, error
        self.batches += 1

    def _rerun(
        self, batch: _Batch, writer: Any, tip: Any, cache: LedgerCache | None
    ) -> tuple[BatchView, LedgerCache]:
        """Run the batch again on the committed state (loading it if it moved)."""
        if cache is None or cache.tip != tip:
            if cache is not None:
                log.warning(
                    "ledger tip moved under this writer; reloading its state",
                    extra={"cached_length": cache.tip.length, "stored_length": tip.length},
                )
            cache = LedgerCache.load(writer, tip)
        if batch.view is not None:
            self.reruns += 1
        view = BatchView(cache)
        batch.outcomes = self._run_calls(view, batch.calls)
        with self._state:
            self._cache = cache
            self._void_inflight()
        return view, cache

    def _void_inflight(self) -> None:
        """Speculations in flight rest on a state that is gone: later batches run again."""
        for view in self._inflight:
            view.detach()
        self._inflight.clear()
        self._generation += 1

    def _prune_horizon(self, view: BatchView) -> int | None:
        """The block time before which dedup entries can go, when this batch crossed a
        multiple of :data:`DEDUP_PRUNE_INTERVAL` blocks."""
        commits = view.commits
        if not commits:
            return None
        first, last = commits[0].index, commits[-1].index
        if first // DEDUP_PRUNE_INTERVAL == last // DEDUP_PRUNE_INTERVAL and (
            first % DEDUP_PRUNE_INTERVAL
        ):
            return None
        config = self._config
        now = commits[-1].block.timestamp
        return now - config.tx_window_ns - config.permitted_drift_ns
