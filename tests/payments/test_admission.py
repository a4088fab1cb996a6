"""The stake and funding checks: the coordinator's policy and the publisher's decider."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from califusion.agent.admission import StakeDecider
from califusion.agent.payments import check_escrow, escrow_terms_for
from califusion.coordinator.admission import JoinRequest, OpenRequest, StakeAdmission
from califusion.core.clock import FakeClock
from califusion.core.errors import Conflict
from califusion.crypto.identity import Identity
from califusion.crypto.principal import Account, Principal
from califusion.ledger import Ledger, LedgerConfig, LedgerStore, Ok, TransferArg
from califusion.ledger.escrow_executor import EscrowExecutor
from califusion.ledger.escrow_ids import DepositKind, deposit_memo, escrow_account
from califusion.ledger.escrow_terms import sign_statement
from califusion.protocol import JobInfo, JobSpec, MemberInfo, MemberState
from califusion.protocol.jobs import JobState

MINTER = Principal(b"\x4d" * 10)
JOB = "job-" + "12" * 16
CFT = 100_000_000
PUBLISHER = Identity.generate()
TRAINER = Identity.generate()


def _spec(**update: object) -> JobSpec:
    base = {
        "title": "t",
        "model": {
            "architecture": {"kind": "logistic_regression", "n_features": 2, "n_classes": 2},
            "training": {
                "loss": "cross_entropy",
                "optimizer": {"name": "sgd", "learning_rate": 0.1},
                "local_epochs": 1,
                "batch_size": 8,
            },
        },
        "data_schema": {
            "features": [{"name": "a"}, {"name": "b"}],
            "label": {"name": "y", "n_classes": 2},
        },
        "rounds": 2,
        "trainers_wanted": 3,
        "min_trainers_per_round": 1,
        "aggregation_mode": "publisher",
        "reward_pool": 10 * CFT,
        "stake": CFT,
        "price": 2 * CFT,
    }
    base.update(update)
    return JobSpec.model_validate(base)


def _job(spec: JobSpec, members: list[MemberInfo] | None = None) -> JobInfo:
    return JobInfo(
        job_id=JOB,
        publisher=PUBLISHER.principal.to_text(),
        aggregator_agreement_public="A" * 43,
        spec=spec,
        state=JobState.DRAFT,
        created_at=0.0,
        current_round=0,
        rounds_completed=0,
        initial_model="0" * 64,
        members=members or [],
    )


@pytest.fixture
def executor(tmp_path: Path) -> Iterator[EscrowExecutor]:
    ledger = Ledger(
        LedgerStore(f"sqlite:///{tmp_path / 'l.db'}"),
        LedgerConfig(minting_account=Account(MINTER)),
        FakeClock(1_750_000_000.0),
        Ed25519PrivateKey.generate(),
    )
    for who in (PUBLISHER, TRAINER):
        assert isinstance(
            ledger.icrc1_transfer(MINTER, TransferArg(to=Account(who.principal), amount=100 * CFT)),
            Ok,
        )
    yield EscrowExecutor(ledger)
    ledger.close()


def _pay(executor: EscrowExecutor, who: Identity, amount: int, kind: DepositKind) -> None:
    ledger = executor._ledger
    memo = deposit_memo(JOB, kind)
    assert isinstance(
        ledger.icrc1_transfer(
            who.principal, TransferArg(to=escrow_account(JOB), amount=amount, memo=memo)
        ),
        Ok,
    )


def test_a_job_opens_only_with_matching_terms_and_its_pool_in_escrow(
    executor: EscrowExecutor,
) -> None:
    spec = _spec()
    policy = StakeAdmission(executor)
    request = OpenRequest(JOB, spec, PUBLISHER.principal.to_text())
    with pytest.raises(Conflict, match="no escrow terms"):
        policy.review_open(request)
    executor.register_terms(
        sign_statement(PUBLISHER, escrow_terms_for(_job(spec), 1_750_000_000 * 10**9))
    )
    with pytest.raises(Conflict, match="must be in escrow"):
        policy.review_open(request)
    _pay(executor, PUBLISHER, 10 * CFT, DepositKind.FUND)
    policy.review_open(request)
    with pytest.raises(Conflict, match="do not match"):
        policy.review_open(OpenRequest(JOB, _spec(stake=2 * CFT), request.publisher))
    StakeAdmission(executor).review_open(
        OpenRequest(JOB, _spec(reward_pool=0, stake=0, price=None), request.publisher)
    )


def test_a_trainer_joins_and_is_admitted_only_with_its_stake_on_the_ledger(
    executor: EscrowExecutor,
) -> None:
    spec = _spec()
    executor.register_terms(
        sign_statement(PUBLISHER, escrow_terms_for(_job(spec), 1_750_000_000 * 10**9))
    )
    _pay(executor, PUBLISHER, 10 * CFT, DepositKind.FUND)
    trainer = TRAINER.principal.to_text()
    join = JoinRequest(JOB, spec, PUBLISHER.principal.to_text(), trainer, 10, 0, 0)
    member = MemberInfo(
        trainer=trainer,
        state=MemberState.PENDING,
        declared_samples=10,
        joined_at=0.0,
        rounds_contributed=0,
    )
    decider = StakeDecider(executor)
    with pytest.raises(Conflict, match=r"stake of 1\.00000000 CFT is required"):
        StakeAdmission(executor).review(join)
    assert decider.decide(_job(spec), member) is None  # wait: never released unpaid
    _pay(executor, TRAINER, CFT // 2, DepositKind.STAKE)  # too little: not a stake
    assert decider.decide(_job(spec), member) is None
    _pay(executor, TRAINER, CFT, DepositKind.STAKE)
    StakeAdmission(executor).review(join)
    assert decider.decide(_job(spec), member) is True
    assert StakeDecider(executor).decide(_job(_spec(stake=0)), member) is True
    check_escrow(_job(spec), executor.status(JOB))
    with pytest.raises(Conflict, match="other terms"):
        check_escrow(_job(_spec(price=3 * CFT)), executor.status(JOB))
