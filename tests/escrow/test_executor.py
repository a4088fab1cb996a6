"""The escrow executor against a real embedded ledger: who can move escrow funds, and how."""

from __future__ import annotations

from pathlib import Path

import pytest

from califusion.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from califusion.crypto.identity import Identity
from califusion.crypto.principal import Account
from califusion.ledger import ApproveArgs, TransferArg, TransferFromArgs, verify_store
from califusion.ledger.escrow import Ending
from califusion.ledger.escrow_executor import EscrowExecutor
from califusion.ledger.escrow_ids import (
    ESCROW_PRINCIPAL,
    DepositKind,
    escrow_account,
    escrow_subaccount,
)
from califusion.ledger.escrow_terms import CloseStatement, Outcome, sign_statement

from .helpers import (
    BUYER,
    CFT,
    DAY_NS,
    FEE,
    JOB,
    NS,
    PUBLISHER,
    START,
    TRAINERS,
    Bank,
    round_statement,
    terms,
)

ESCROW = escrow_account(JOB)


def test_no_ordinary_call_can_move_escrow_funds(bank: Bank) -> None:
    bank.register(terms())
    bank.deposit(PUBLISHER, 10 * CFT, DepositKind.FUND)
    steal = TransferArg(
        to=Account(PUBLISHER.principal), amount=CFT, from_subaccount=escrow_subaccount(JOB)
    )
    with pytest.raises(PermissionDenied, match="escrow executor"):
        bank.ledger.icrc1_transfer(ESCROW_PRINCIPAL, steal)
    with pytest.raises(PermissionDenied):
        bank.ledger.icrc2_approve(
            ESCROW_PRINCIPAL,
            ApproveArgs(
                spender=Account(PUBLISHER.principal),
                amount=CFT,
                from_subaccount=escrow_subaccount(JOB),
            ),
        )
    with pytest.raises(PermissionDenied):
        bank.ledger.icrc2_transfer_from(
            ESCROW_PRINCIPAL,
            TransferFromArgs(from_=Account(TRAINERS[0].principal), to=ESCROW, amount=1),
        )
    # The one handle is held by the executor: nobody can claim a second.
    with pytest.raises(Conflict, match="already held"):
        bank.ledger.claim_reserved_caller(ESCROW_PRINCIPAL)
    with pytest.raises(Conflict):
        EscrowExecutor(bank.ledger)
    with pytest.raises(InvalidInput):
        bank.ledger.claim_reserved_caller(PUBLISHER.principal)
    assert bank.balance(ESCROW) == 10 * CFT


def test_terms_bind_once_and_only_from_the_publisher(bank: Bank) -> None:
    impostor = Identity.generate()
    forged = sign_statement(impostor, terms())  # names PUBLISHER but signed by someone else
    with pytest.raises(PermissionDenied, match="publisher"):
        bank.executor.register_terms(forged)
    bank.register(terms())
    bank.register(terms())  # the same terms again: fine
    with pytest.raises(Conflict, match="other terms"):
        bank.register(terms(stake=1))
    with pytest.raises(InvalidInput, match="deadline"):
        bank.register(terms(job_id="job-" + "cd" * 16, deadline_ns=int(START) * NS - 1))


def test_statements_need_terms_and_the_publishers_signature(bank: Bank) -> None:
    statement = round_statement(1, {TRAINERS[0]: 5})
    with pytest.raises(NotFound):
        bank.submit(statement)
    bank.register(terms())
    with pytest.raises(PermissionDenied):
        bank.executor.submit_statement(sign_statement(TRAINERS[0], statement))
    bank.submit(statement)
    assert bank.executor.status(JOB).rounds_recorded == 1


def test_stakes_by_allowance_or_memo_and_never_twice(bank: Bank) -> None:
    bank.register(terms())
    stake = CFT // 10
    with pytest.raises(Conflict, match="approve"):
        bank.executor.collect_stake(TRAINERS[0].principal, JOB)
    block = bank.approve_and_collect(TRAINERS[0], stake)
    assert bank.executor.collect_stake(TRAINERS[0].principal, JOB) == block  # not a second debit
    bank.deposit(TRAINERS[1], stake, DepositKind.STAKE)
    status = bank.executor.status(JOB)
    assert status.stake_of(TRAINERS[0].principal) == stake == status.stake_of(TRAINERS[1].principal)
    assert status.stake_of(TRAINERS[2].principal) == 0
    assert bank.balance(TRAINERS[0]) == 100 * CFT - stake - 2 * FEE  # approve fee + transfer fee


def _run_job(bank: Bank) -> None:
    bank.register(terms())
    bank.deposit(PUBLISHER, 10 * CFT, DepositKind.FUND)
    for trainer in TRAINERS:
        bank.approve_and_collect(trainer, CFT // 10)
    bank.submit(round_statement(1, {TRAINERS[0]: 100, TRAINERS[1]: 300}))
    bank.submit(round_statement(2, {TRAINERS[0]: 100, TRAINERS[1]: 300}))
    bank.deposit(BUYER, 2 * CFT, DepositKind.BUY)
    bank.deposit(BUYER, 2 * CFT, DepositKind.BUY)  # by mistake, twice


def test_a_whole_job_pays_by_the_rule_once(bank: Bank) -> None:
    _run_job(bank)
    before = {who: bank.balance(who) for who in (PUBLISHER, *TRAINERS, BUYER)}
    supply_before = bank.ledger.icrc1_total_supply()
    made = bank.executor.run_due()
    assert bank.executor.run_due() == []  # nothing is paid twice
    # settlement: T0 and T1 refunded; T2 (no contribution) slashed into the reward: 10.1 CFT
    # split 1:3; sale: 1 CFT to the publisher, 1 CFT split 1:3; the second purchase refunded.
    reward = 10 * CFT + CFT // 10
    assert (
        bank.balance(TRAINERS[0]) - before[TRAINERS[0]]
        == reward // 4 + CFT // 10 + CFT // 4 - 2 * FEE
    )
    assert (
        bank.balance(TRAINERS[1]) - before[TRAINERS[1]]
        == reward - reward // 4 + CFT // 10 + 3 * CFT // 4 - 2 * FEE
    )
    assert bank.balance(TRAINERS[2]) == before[TRAINERS[2]]
    assert bank.balance(PUBLISHER) - before[PUBLISHER] == CFT - FEE
    assert bank.balance(BUYER) - before[BUYER] == 2 * CFT - FEE
    assert bank.balance(ESCROW) == 0
    assert bank.ledger.icrc1_total_supply() == supply_before - len(made) * FEE
    status = bank.executor.status(JOB)
    assert status.ending is Ending.COMPLETED and status.payments_made == len(made) == 6
    assert verify_store(bank.ledger.store).ok  # the chain re-verifies, balances recomputed


def test_an_abandoned_job_settles_at_its_deadline(tmp_path: Path) -> None:
    bank = Bank(tmp_path / "l.db")
    try:
        for who in (PUBLISHER, *TRAINERS):
            bank.mint(who, 100 * CFT)
        bank.register(terms(deadline_ns=int(START) * NS + DAY_NS))
        bank.deposit(PUBLISHER, 10 * CFT, DepositKind.FUND)
        bank.deposit(TRAINERS[0], CFT // 10, DepositKind.STAKE)
        assert bank.executor.run_due() == []  # before the deadline nothing moves
        bank.clock.advance(DAY_NS / NS)
        bank.executor.run_due()
        assert bank.executor.status(JOB).ending is Ending.EXPIRED
        assert bank.balance(PUBLISHER) == 100 * CFT - 2 * FEE  # its transfer fee and the refund's
        assert bank.balance(TRAINERS[0]) == 100 * CFT - 2 * FEE
        assert bank.balance(ESCROW) == 0
    finally:
        bank.close()


def test_cancel_before_training_refunds_everyone(bank: Bank) -> None:
    bank.register(terms())
    bank.deposit(PUBLISHER, 10 * CFT, DepositKind.FUND)
    bank.approve_and_collect(TRAINERS[0], CFT // 10)
    bank.executor.submit_statement(
        sign_statement(PUBLISHER, CloseStatement(JOB, Outcome.CANCELLED))
    )
    bank.executor.run_due()
    assert bank.balance(PUBLISHER) == 100 * CFT - 2 * FEE
    assert bank.balance(TRAINERS[0]) == 100 * CFT - 3 * FEE
    with pytest.raises(Conflict, match="settled"):
        bank.approve_and_collect(TRAINERS[1], CFT // 10)


class _Crash(Exception):
    pass


@pytest.mark.parametrize("later_s", [0.0, 25 * 3600.0], ids=["duplicate", "memo-lookup"])
def test_a_replay_after_a_crash_is_recognized_not_repeated(tmp_path: Path, later_s: float) -> None:
    """Crash after the ledger took payment 0 but before it was recorded; the retry is answered
    Duplicate inside the window, and found by its memo after it: the chain does not grow."""
    crashed = False

    def crash_once(point: str, _payment: object) -> None:
        nonlocal crashed
        if point == "after-transfer" and not crashed:
            crashed = True
            raise _Crash

    bank = Bank(tmp_path / "l.db", hook=crash_once)
    try:
        for who in (PUBLISHER, TRAINERS[0]):
            bank.mint(who, 100 * CFT)
        bank.register(terms(rounds=1, stake=0))
        bank.deposit(PUBLISHER, 10 * CFT, DepositKind.FUND)
        bank.submit(round_statement(1, {TRAINERS[0]: 1}))
        with pytest.raises(_Crash):
            bank.executor.run_due()
        length = bank.ledger.icrc3_get_blocks(0, 0).log_length
        assert bank.executor.status(JOB).payments_made == 0
        bank.clock.advance(later_s)
        [payment] = bank.executor.run_due()
        assert bank.ledger.icrc3_get_blocks(0, 0).log_length == length  # no second transfer
        assert bank.executor.store.payments(JOB) == {payment.memo: length - 1}
        assert bank.balance(TRAINERS[0]) == 110 * CFT - FEE
    finally:
        bank.close()
