"""The escrow's background thread: pays what falls due after a poke, and stops cleanly."""

from __future__ import annotations

import time
from pathlib import Path

from califusion.ledger.escrow_ids import DepositKind
from califusion.ledger.escrow_runner import EscrowRunner

from .helpers import CFT, PUBLISHER, TRAINERS, Bank, round_statement, terms


def test_a_poke_pays_the_settlement_and_stop_joins_the_thread(tmp_path: Path) -> None:
    bank = Bank(tmp_path / "ledger.db")
    try:
        for who in (PUBLISHER, *TRAINERS):
            bank.mint(who, 100 * CFT)
        bank.register(terms(rounds=1))
        bank.deposit(PUBLISHER, 10 * CFT, DepositKind.FUND)
        runner = EscrowRunner(bank.executor, interval_s=3600.0).start()  # only pokes wake it
        try:
            deadline = time.monotonic() + 10
            while runner.passes < 1:  # the first pass runs at start
                assert time.monotonic() < deadline
                time.sleep(0.01)
            bank.submit(round_statement(1, {TRAINERS[0]: 5}))
            runner.poke()
            while bank.executor.status("job-" + "ab" * 16).payments_made < 1:
                assert time.monotonic() < deadline
                time.sleep(0.01)
        finally:
            runner.stop()
        assert runner.passes >= 2
        assert bank.balance(TRAINERS[0]) == 100 * CFT + 10 * CFT - 10_000
        runner.stop()  # stopping twice is harmless
    finally:
        bank.close()
