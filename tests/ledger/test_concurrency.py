"""Concurrent clients: no lost update, no negative balance, supply conserved, one valid chain.

Threads share one Ledger, exactly like the request handlers of one server: their calls queue at
its single writer and are committed in batches (``group_commit``); across processes the
tip-row lock (PostgreSQL) or BEGIN IMMEDIATE (SQLite) keeps one chain. The long run — 32 clients
transferring among 100 accounts on PostgreSQL for 30 s (``CALIFUSION_LEDGER_STRESS_S`` changes
the duration) — is part of the gate.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from califusion.core.clock import SystemClock
from califusion.crypto.principal import Account, Principal
from califusion.ledger import (
    Err,
    InsufficientFunds,
    Ledger,
    LedgerConfig,
    LedgerStore,
    Ok,
    TransferArg,
    verify_store,
)

from .conftest import _reset
from .helpers import MINTER, principal

FEE = 10_000
START_BALANCE = 3_000_000


def _hammer(
    store: LedgerStore,
    threads: int,
    transfers_each: int,
    n_accounts: int,
    seconds: float | None = None,
) -> int:
    """``threads`` clients each make ``transfers_each`` random transfers (or as many as they
    can in ``seconds``); then every invariant is checked. Returns the accepted count."""
    ledger = Ledger(
        store,
        LedgerConfig(minting_account=Account(MINTER)),
        SystemClock(),
        Ed25519PrivateKey.generate(),
    )
    owners = [principal(i) for i in range(n_accounts)]
    for owner in owners:
        assert isinstance(
            ledger.icrc1_transfer(MINTER, TransferArg(to=Account(owner), amount=START_BALANCE)), Ok
        )

    accepted: list[tuple[int, Principal, Principal, int]] = []
    refused: Counter[str] = Counter()
    failures: list[BaseException] = []
    lock = threading.Lock()

    def client(seed: int) -> None:
        rng = random.Random(seed)
        deadline = time.monotonic() + seconds if seconds is not None else None

        def more(done: int) -> bool:
            return time.monotonic() < deadline if deadline is not None else done < transfers_each

        try:
            done = 0
            while more(done):
                done += 1
                sender, receiver = rng.sample(owners, 2)
                amount = rng.randrange(1, 400_000)
                result = ledger.icrc1_transfer(
                    sender, TransferArg(to=Account(receiver), amount=amount)
                )
                with lock:
                    if isinstance(result, Ok):
                        accepted.append((result.block_index, sender, receiver, amount))
                    else:
                        assert isinstance(result, Err) and isinstance(
                            result.error, InsufficientFunds
                        )
                        refused[type(result.error).__name__] += 1
        except BaseException as exc:  # reported below
            failures.append(exc)

    workers = [threading.Thread(target=client, args=(seed,)) for seed in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not failures, failures

    # Every accepted transfer got its own block, right after the mints, with no gap.
    indices = sorted(index for index, *_ in accepted)
    assert indices == list(range(n_accounts, n_accounts + len(accepted)))

    expected = dict.fromkeys(owners, START_BALANCE)
    for _, sender, receiver, amount in accepted:
        expected[sender] -= amount + FEE
        expected[receiver] += amount
    for owner in owners:
        assert ledger.icrc1_balance_of(Account(owner)) == expected[owner]  # no lost update
        assert expected[owner] >= 0
    assert ledger.icrc1_total_supply() == n_accounts * START_BALANCE - FEE * len(accepted)

    report = verify_store(store)
    assert report.ok, report.summary()
    assert report.blocks_checked == n_accounts + len(accepted)
    assert report.balances == {Account(o): b for o, b in expected.items() if b}
    return len(accepted)


@pytest.mark.postgres
def test_concurrent_transfers_on_postgres(pg_url: str) -> None:
    store = LedgerStore(pg_url, pool_size=8, max_overflow=0)
    try:
        _reset(store)
        _hammer(store, threads=8, transfers_each=100, n_accounts=20)
    finally:
        store.close()


@pytest.mark.postgres
def test_32_clients_for_30_seconds_on_postgres(pg_url: str) -> None:
    """No lost update, no negative balance, supply conserved, one valid chain."""
    seconds = float(os.environ.get("CALIFUSION_LEDGER_STRESS_S", "30"))
    store = LedgerStore(pg_url, pool_size=4, max_overflow=0)
    try:
        _reset(store)
        accepted = _hammer(store, threads=32, transfers_each=0, n_accounts=100, seconds=seconds)
    finally:
        store.close()
    assert accepted > 1000 * seconds / 30  # it made real progress, not a handful of calls


def test_concurrent_transfers_on_sqlite_file(tmp_path: Path) -> None:
    store = LedgerStore(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        _hammer(store, threads=4, transfers_each=50, n_accounts=10)
    finally:
        store.close()


def test_two_stores_on_one_sqlite_file_share_one_chain(tmp_path: Path) -> None:
    """Two engines (as two processes would have) serialize through BEGIN IMMEDIATE."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first, second = LedgerStore(url), LedgerStore(url)
    config = LedgerConfig(minting_account=Account(MINTER))
    ledgers = [
        Ledger(s, config, SystemClock(), Ed25519PrivateKey.generate()) for s in (first, second)
    ]
    results: list[object] = []

    def mint(ledger: Ledger) -> None:
        for _ in range(40):
            results.append(
                ledger.icrc1_transfer(MINTER, TransferArg(to=Account(principal(1)), amount=5))
            )

    threads = [threading.Thread(target=mint, args=(ledger,)) for ledger in ledgers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.block_index for r in results if isinstance(r, Ok)) == list(range(80))
    assert verify_store(first).ok
    first.close()
    second.close()
