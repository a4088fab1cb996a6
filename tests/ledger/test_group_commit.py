"""The single writer: batching, isolation of a refused call, failed commits, other writers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from califusion.core.clock import FakeClock, SystemClock
from califusion.core.errors import InvalidInput, Unavailable
from califusion.crypto.principal import Account
from califusion.ledger import (
    Ledger,
    LedgerConfig,
    LedgerStore,
    LedgerView,
    Ok,
    TransferArg,
    Transition,
    apply_transfer,
    verify_store,
)
from califusion.ledger.group_commit import DEDUP_PRUNE_INTERVAL, GroupCommit
from califusion.ledger.schema import dedup_table
from califusion.ledger.sql_write import BatchWriter

from .conftest import _reset
from .helpers import ALICE, BOB, DAY_NS, DRIFT_NS, MINTER, principal

Fund = Callable[[Account, int], None]


def _hold_the_lead(writer: GroupCommit) -> tuple[threading.Event, threading.Thread]:
    """Start a call that keeps the lead until the returned event is set, so the calls made
    meanwhile queue up and are committed together in the next batch."""
    release, running = threading.Event(), threading.Event()

    def blocking(view: LedgerView, now: int) -> Transition[Any]:
        running.set()  # the leader has taken this call off the queue
        release.wait(10)
        return Transition(Ok(-1))

    thread = threading.Thread(target=writer.submit, args=(blocking,))
    thread.start()
    assert running.wait(5)
    return release, thread


def _in_threads(calls: list[Callable[[], object]]) -> tuple[list[threading.Thread], list[object]]:
    results: list[object] = [None] * len(calls)

    def run(i: int) -> None:
        try:
            results[i] = calls[i]()
        except Exception as exc:  # kept as the result
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    return threads, results


def _wait_pending(writer: GroupCommit, count: int) -> None:
    deadline = time.monotonic() + 5
    while writer.pending < count and time.monotonic() < deadline:
        time.sleep(0.001)
    assert writer.pending == count


def test_calls_that_wait_are_committed_in_one_batch(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 10**9)
    writer = ledger.writer
    release, holder = _hold_the_lead(writer)
    batches_before = writer.batches

    def pay(i: int) -> Callable[[], object]:
        return lambda: ledger.icrc1_transfer(ALICE, TransferArg(Account(principal(i)), amount=i))

    transfers = [pay(i) for i in range(1, 21)]
    threads, results = _in_threads(transfers)
    _wait_pending(writer, 20)
    release.set()
    for thread in [holder, *threads]:
        thread.join()
    assert writer.batches - batches_before == 2  # the holder's, then all twenty together
    assert sorted(r.block_index for r in results if isinstance(r, Ok)) == list(range(1, 21))
    for i in range(1, 21):
        assert ledger.icrc1_balance_of(Account(principal(i))) == i
    assert verify_store(ledger.store).ok


def test_a_refused_call_does_not_disturb_its_batch(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 10**9)
    writer = ledger.writer
    release, holder = _hold_the_lead(writer)
    good = TransferArg(to=Account(BOB), amount=5)
    bad = TransferArg(to=Account(BOB), amount=5, memo=b"x" * 33)
    threads, results = _in_threads(
        [
            lambda: ledger.icrc1_transfer(ALICE, good),
            lambda: ledger.icrc1_transfer(ALICE, bad),
            lambda: ledger.icrc1_transfer(ALICE, good),
        ]
    )
    _wait_pending(writer, 3)
    release.set()
    for thread in [holder, *threads]:
        thread.join()
    assert isinstance(results[1], InvalidInput)
    assert sorted(r.block_index for r in results if isinstance(r, Ok)) == [1, 2]
    assert ledger.icrc1_balance_of(Account(BOB)) == 10


def test_a_failed_commit_fails_its_calls_and_the_ledger_reloads(
    ledger: Ledger, fund: Fund, monkeypatch: pytest.MonkeyPatch
) -> None:
    fund(Account(ALICE), 1_000_000)
    real_write = BatchWriter.write

    def broken(self: BatchWriter, view: Any) -> None:
        real_write(self, view)
        raise OperationalError("INSERT", {}, Exception("disk I/O error"))

    monkeypatch.setattr(BatchWriter, "write", broken)
    with pytest.raises(Unavailable):
        ledger.icrc1_transfer(ALICE, TransferArg(to=Account(BOB), amount=100))
    monkeypatch.setattr(BatchWriter, "write", real_write)
    # Nothing of the failed batch stayed, neither in the database nor in the writer's memory.
    assert ledger.icrc1_balance_of(Account(BOB)) == 0
    assert ledger.icrc1_transfer(ALICE, TransferArg(to=Account(BOB), amount=100)) == Ok(1)
    assert ledger.icrc1_balance_of(Account(ALICE)) == 1_000_000 - 100 - 10_000
    assert verify_store(ledger.store).ok


@pytest.mark.postgres
def test_two_writers_on_one_postgres_database_lose_nothing(pg_url: str) -> None:
    """Two ledgers (as two processes would be) on one database: each notices the other's
    blocks through the tip and reloads, so no update is lost and the chain stays one."""
    stores = [LedgerStore(pg_url), LedgerStore(pg_url)]
    _reset(stores[0])
    config = LedgerConfig(minting_account=Account(MINTER))
    key = Ed25519PrivateKey.generate()
    ledgers = [Ledger(store, config, SystemClock(), key) for store in stores]
    try:

        def mint(ledger: Ledger) -> None:
            for _ in range(30):
                ledger.icrc1_transfer(MINTER, TransferArg(to=Account(ALICE), amount=7))

        threads = [threading.Thread(target=mint, args=(ledger,)) for ledger in ledgers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert ledgers[0].icrc1_balance_of(Account(ALICE)) == 60 * 7
        report = verify_store(stores[0])
        assert report.ok, report.summary()
        assert report.blocks_checked == 60
    finally:
        for ledger in ledgers:
            ledger.close()


def test_dedup_memory_is_pruned_after_the_window(
    ledger: Ledger, fund: Fund, clock: FakeClock
) -> None:
    fund(Account(ALICE), 10**9)
    arg = TransferArg(to=Account(BOB), amount=1, created_at_time=ledger.now_ns())
    assert isinstance(ledger.icrc1_transfer(ALICE, arg), Ok)
    clock.advance((DAY_NS + DRIFT_NS) / 1e9 + 1)
    for _ in range(DEDUP_PRUNE_INTERVAL):
        ledger.icrc1_transfer(ALICE, TransferArg(to=Account(BOB), amount=1))
    with ledger.store.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(dedup_table)).scalar_one() == 0
    cache = ledger.writer._cache
    assert cache is not None and not cache.dedup


def test_the_writer_runs_the_state_machine_it_is_given(ledger: Ledger, fund: Fund) -> None:
    fund(Account(ALICE), 10**6)
    config = ledger.config
    arg = TransferArg(to=Account(BOB), amount=3)
    result = ledger.writer.submit(lambda view, now: apply_transfer(view, config, ALICE, arg, now))
    assert result == Ok(1)
    assert ledger.icrc1_balance_of(Account(BOB)) == 3


def test_a_batch_that_rode_on_a_failed_one_is_run_again(
    ledger: Ledger, fund: Fund, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next batch runs its rules on top of the batch still committing; when that commit
    fails, the next batch is run again on what is really committed."""
    fund(Account(ALICE), 1_000_000)
    writer = ledger.writer
    real_write = BatchWriter.write
    in_write, fail_now = threading.Event(), threading.Event()
    failed_once: list[bool] = []

    def slow_then_broken(self: BatchWriter, view: Any) -> None:
        if not failed_once:
            failed_once.append(True)
            in_write.set()
            fail_now.wait(10)
            raise OperationalError("COMMIT", {}, Exception("disk I/O error"))
        real_write(self, view)

    monkeypatch.setattr(BatchWriter, "write", slow_then_broken)
    threads, results = _in_threads(
        [lambda: ledger.icrc1_transfer(ALICE, TransferArg(to=Account(BOB), amount=100))]
    )
    assert in_write.wait(5)
    later, later_results = _in_threads(
        [lambda: ledger.icrc1_transfer(ALICE, TransferArg(to=Account(BOB), amount=7))]
    )
    deadline = time.monotonic() + 5
    while len(writer._inflight) < 2 and time.monotonic() < deadline:  # it speculated on the first
        time.sleep(0.001)
    fail_now.set()
    for thread in threads + later:
        thread.join()
    assert isinstance(results[0], Unavailable)
    assert later_results[0] == Ok(1)  # as if the failed transfer never happened
    assert writer.reruns >= 1
    assert ledger.icrc1_balance_of(Account(BOB)) == 7
    assert verify_store(ledger.store).ok
