"""Exactly once: kill the paying process at every point between payments, restart it.

A job is settled and a model sold on a ledger file; then the escrow executor runs in a forked
process that SIGKILLs itself at the n-th of its hook points — before a transfer, after the
ledger accepted it but before it was recorded, after the record — for every n. A fresh process
then finishes the work, either at once (inside the ledger's 24 h deduplication window: the
replayed transfer is answered ``Duplicate``) or 25 hours later (outside it: the executor finds
the payment by its memo). Every time, every party must end with exactly what the rule says: no
payment lost, none doubled, total supply down by exactly one fee per payment, chain verified.
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from califusion.core.clock import FakeClock
from califusion.crypto.identity import Identity
from califusion.ledger import verify_store
from califusion.ledger.escrow import plan
from califusion.ledger.escrow_ids import ESCROW_PRINCIPAL, DepositKind, escrow_account
from califusion.ledger.escrow_schema import payments_table
from califusion.ledger.escrow_store import EscrowStore
from califusion.ledger.schema import blocks_table

from .helpers import BUYER, CFT, FEE, JOB, PUBLISHER, START, TRAINERS, Bank, round_statement, terms

PARTIES: list[Identity] = [PUBLISHER, *TRAINERS, BUYER]
LATER = 25 * 3600.0  # past the 24 h deduplication window
_fork = multiprocessing.get_context("fork")


def _build(path: Path) -> None:
    """A completed job with a stray deposit, a slashed stake, a sale and a double purchase."""
    bank = Bank(path)
    try:
        for who in PARTIES:
            bank.mint(who, 100 * CFT)
        bank.register(terms())
        bank.deposit(PUBLISHER, 10 * CFT, DepositKind.FUND)
        bank.approve_and_collect(TRAINERS[0], CFT // 10)
        bank.deposit(TRAINERS[1], CFT // 10, DepositKind.STAKE)
        bank.approve_and_collect(TRAINERS[2], CFT // 10)
        bank.deposit(TRAINERS[1], 3 * CFT, None)  # a stray: refunded with the settlement
        bank.submit(round_statement(1, {TRAINERS[0]: 120, TRAINERS[1]: 333}))
        bank.submit(round_statement(2, {TRAINERS[0]: 120, TRAINERS[1]: 334}))
        bank.deposit(BUYER, 2 * CFT, DepositKind.BUY)
        bank.deposit(BUYER, 2 * CFT, DepositKind.BUY)
    finally:
        bank.close()


def _pay(path: Path, clock_at: float, crash_at: int | None) -> None:
    """Runs in a forked child: pay everything due, SIGKILLing itself at hook point ``crash_at``."""
    seen = 0

    def hook(_point: str, _payment: object) -> None:
        nonlocal seen
        if seen == crash_at:
            os.kill(os.getpid(), signal.SIGKILL)
        seen += 1

    bank = Bank(path, clock=FakeClock(clock_at), hook=hook)
    bank.executor.run_due()
    bank.close()


def _in_child(path: Path, clock_at: float, crash_at: int | None) -> int | None:
    process = _fork.Process(target=_pay, args=(path, clock_at, crash_at))
    process.start()
    process.join(60)
    return process.exitcode


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("escrow") / "template.db"
    _build(path)
    return path


@pytest.fixture(scope="module")
def expected(template: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Balances the rule prescribes, computed from the plan, and the number of hook points."""
    path = tmp_path_factory.mktemp("reference") / "ledger.db"
    shutil.copy(template, path)
    points: list[str] = []
    bank = Bank(path, hook=lambda point, _p: points.append(point))
    try:
        before = {who.principal: bank.balance(who) for who in PARTIES}
        supply = bank.ledger.icrc1_total_supply()
        state = bank.executor.store.state(JOB)
        assert state is not None
        payments = [
            p for b in plan(state, bank.executor.store.deposits(JOB), FEE) for p in b.payments
        ]
        owed = dict(before)
        for payment in payments:
            owed[payment.to.owner] += payment.amount
        bank.executor.run_due()
        assert {who.principal: bank.balance(who) for who in PARTIES} == owed
    finally:
        bank.close()
    assert len(payments) == 6 and len(points) == 3 * len(payments)
    return {
        "owed": owed,
        "supply": supply - len(payments) * FEE,
        "payments": len(payments),
        "points": len(points),
    }


def _check(path: Path, expected: dict[str, object]) -> None:
    bank = Bank(path)
    try:
        assert {who.principal: bank.balance(who) for who in PARTIES} == expected["owed"]
        assert bank.balance(escrow_account(JOB)) == 0
        assert bank.ledger.icrc1_total_supply() == expected["supply"]
        assert verify_store(bank.ledger.store).ok
        engine = bank.ledger.store.engine
        with engine.connect() as conn:
            memos = (
                conn.execute(
                    select(blocks_table.c.memo).where(
                        blocks_table.c.from_owner == ESCROW_PRINCIPAL.raw
                    )
                )
                .scalars()
                .all()
            )
            recorded = conn.execute(select(func.count()).select_from(payments_table)).scalar_one()
        assert len(memos) == len(set(memos)) == expected["payments"]  # none lost, none doubled
        assert recorded == expected["payments"]
        assert EscrowStore(engine).status(JOB).payments_made == expected["payments"]
        assert bank.executor.run_due() == []
    finally:
        bank.close()


def _copy(template: Path, to: Path) -> Path:
    path = to / "ledger.db"
    shutil.copy(template, path)
    return path


@pytest.mark.parametrize("restart_after", [0.0, LATER], ids=["inside-window", "after-window"])
def test_killed_at_every_point_and_restarted_pays_exactly_once(
    template: Path, expected: dict[str, object], tmp_path: Path, restart_after: float
) -> None:
    points = expected["points"]
    assert isinstance(points, int)
    for crash_at in range(points):
        path = _mkdir_copy(template, tmp_path / f"crash-{crash_at}")
        assert _in_child(path, START, crash_at) == -signal.SIGKILL
        assert _in_child(path, START + restart_after, None) == 0
        _check(path, expected)


def _mkdir_copy(template: Path, folder: Path) -> Path:
    folder.mkdir()
    return _copy(template, folder)


def test_killed_again_and_again_until_done(
    template: Path, expected: dict[str, object], tmp_path: Path
) -> None:
    """Each run dies soon after it starts (right after recording its first payment, or just
    before sending its second); runs are restarted until one finishes."""
    path = _mkdir_copy(template, tmp_path / "chain")
    runs = 0
    while (code := _in_child(path, START + runs, 2 + runs % 2)) != 0:
        assert code == -signal.SIGKILL
        runs += 1
        assert runs < 50
    assert runs >= 4
    _check(path, expected)
