"""The services and repositories, one contract run against SQLite and PostgreSQL.

No HTTP here: principals are inserted directly, callers are principal strings. The API tests
cover authentication and the wire format.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select

from califusion.coordinator import Database, build_coordinator, tick
from califusion.coordinator.db import NonceRow, PrincipalRow, upgrade_engine
from califusion.coordinator.db.nonces import DatabaseNonceStore
from califusion.coordinator.db.repositories import JobRepository, PrincipalRepository
from califusion.coordinator.deps import Coordinator
from califusion.coordinator.progress import advance_due_jobs
from califusion.core.clock import FakeClock
from califusion.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
)
from califusion.core.settings import CoordinatorSettings
from califusion.crypto.encoding import b64e
from califusion.crypto.identity import Identity
from califusion.protocol.jobs import (
    Admission,
    AdmitTrainers,
    CreateJob,
    JobSpec,
    JobState,
    JoinJob,
    MemberState,
    PublishResult,
    RoundMetrics,
    RoundState,
    SubmitUpdate,
)

from .factories import job_spec, spec_json

KEY = b64e(b"wrapped-key-bytes" * 3)


@pytest.fixture
def coordinator(settings: CoordinatorSettings, clock: FakeClock) -> Iterator[Coordinator]:
    wired = build_coordinator(settings, clock=clock)
    upgrade_engine(wired.db.engine)
    yield wired
    wired.db.dispose()


def _add_principal(db: Database) -> str:
    identity = Identity.generate()
    public = identity.public()
    with db.transaction() as session:
        PrincipalRepository(session).add(
            PrincipalRow(
                principal=identity.principal.to_text(),
                signing_public=public.signing_public,
                agreement_public=public.agreement_public,
                display_name="",
                registered_at=0.0,
            )
        )
    return identity.principal.to_text()


class World:
    """A publisher, three trainers and a job in state open."""

    def __init__(self, c: Coordinator, **spec: Any) -> None:
        self.c = c
        self.publisher = _add_principal(c.db)
        self.trainers = [_add_principal(c.db) for _ in range(3)]
        model = c.blobs.put(b"initial model")
        job = c.jobs.create(self.publisher, CreateJob(spec=job_spec(**spec), initial_model=model))
        self.job_id = job.job_id
        c.jobs.open(self.publisher, self.job_id)

    def admit(self, *trainers: str) -> None:
        for trainer in trainers:
            self.c.jobs.join(trainer, self.job_id, JoinJob(declared_samples=100))
        admissions = [Admission(trainer=t, wrapped_key=KEY) for t in trainers]
        self.c.jobs.admit(self.publisher, self.job_id, AdmitTrainers(admissions=admissions))

    def start(self, n: int = 2) -> None:
        self.admit(*self.trainers[:n])
        self.c.jobs.start(self.publisher, self.job_id)

    def submit(self, trainer: str, number: int = 1, attempt: int = 0) -> None:
        update = self.c.blobs.put(f"update {trainer} {number} {attempt}".encode())
        request = SubmitUpdate(attempt=attempt, update=update)
        self.c.rounds.submit_update(trainer, self.job_id, number, request)

    def publish(self, number: int, contributors: list[str], attempt: int = 0) -> None:
        model = self.c.blobs.put(f"model {number}".encode())
        result = PublishResult(
            attempt=attempt, model=model, contributors=contributors, metrics=RoundMetrics(loss=0.1)
        )
        self.c.rounds.publish_result(self.publisher, self.job_id, number, result)


@pytest.fixture
def world(coordinator: Coordinator) -> World:
    return World(coordinator)


def test_create_job_records_a_draft(coordinator: Coordinator) -> None:
    publisher = _add_principal(coordinator.db)
    model = coordinator.blobs.put(b"m0")
    job = coordinator.jobs.create(publisher, CreateJob(spec=job_spec(), initial_model=model))
    assert job.state is JobState.DRAFT
    assert job.job_id.startswith("job-") and len(job.job_id) == 36
    assert job.current_round == 0
    again = coordinator.jobs.get(job.job_id)
    assert again == job
    with pytest.raises(InvalidInput, match="does not exist"):
        coordinator.jobs.create(publisher, CreateJob(spec=job_spec(), initial_model="0" * 64))


def test_full_lifecycle(world: World) -> None:
    c, t = world.c, world.trainers
    world.start(2)
    assert c.rounds.current(world.job_id).state is RoundState.COLLECTING
    world.submit(t[0])
    world.submit(t[1])
    assert c.rounds.current(world.job_id).state is RoundState.AGGREGATING
    world.publish(1, [t[0], t[1]])
    second = c.rounds.current(world.job_id)
    assert (second.number, second.state) == (2, RoundState.COLLECTING)
    assert second.model == c.rounds.list_rounds(world.job_id)[0].result_model
    world.submit(t[0], 2)
    world.submit(t[1], 2)
    world.publish(2, [t[1]])
    job = c.jobs.get(world.job_id)
    assert job.state is JobState.COMPLETED
    assert job.rounds_completed == 2
    assert job.final_model == c.rounds.list_rounds(world.job_id)[1].result_model
    contributed = {m.trainer: m.rounds_contributed for m in job.members}
    assert contributed == {t[0]: 1, t[1]: 2}


def test_list_filters_and_counts_admitted(world: World) -> None:
    world.admit(*world.trainers[:2])
    other = _add_principal(world.c.db)
    model = world.c.blobs.put(b"other")
    world.c.jobs.create(other, CreateJob(spec=job_spec(), initial_model=model))
    everything = world.c.jobs.list_jobs(state=None, publisher=None)
    assert len(everything) == 2
    [mine] = world.c.jobs.list_jobs(state=JobState.OPEN, publisher=world.publisher)
    assert mine.trainers_admitted == 2
    assert [j.state for j in world.c.jobs.list_jobs(state=JobState.DRAFT, publisher=None)] == [
        JobState.DRAFT
    ]


def test_join_rules(world: World) -> None:
    c, t = world.c, world.trainers
    with pytest.raises(PermissionDenied):
        c.jobs.join(world.publisher, world.job_id, JoinJob(declared_samples=1))
    c.jobs.join(t[0], world.job_id, JoinJob(declared_samples=1))
    with pytest.raises(Conflict, match="already joined"):
        c.jobs.join(t[0], world.job_id, JoinJob(declared_samples=1))
    c.jobs.join(t[1], world.job_id, JoinJob(declared_samples=1))
    c.jobs.join(t[2], world.job_id, JoinJob(declared_samples=1))
    late = _add_principal(c.db)
    with pytest.raises(Conflict, match="job is full"):
        c.jobs.join(late, world.job_id, JoinJob(declared_samples=1))
    with pytest.raises(NotFound):
        c.jobs.join(late, "job-" + "0" * 32, JoinJob(declared_samples=1))


def test_admissions_are_all_or_nothing(world: World) -> None:
    c, t = world.c, world.trainers
    c.jobs.join(t[0], world.job_id, JoinJob(declared_samples=1))
    c.jobs.join(t[1], world.job_id, JoinJob(declared_samples=1))
    mixed = AdmitTrainers(admissions=[Admission(trainer=t[0], wrapped_key=KEY)], rejections=[t[2]])
    with pytest.raises(NotFound, match="has not asked to join"):
        c.jobs.admit(world.publisher, world.job_id, mixed)
    assert {m.state for m in c.jobs.get(world.job_id).members} == {MemberState.PENDING}
    decided = AdmitTrainers(
        admissions=[Admission(trainer=t[0], wrapped_key=KEY)], rejections=[t[1]]
    )
    states = {
        m.trainer: m.state for m in c.jobs.admit(world.publisher, world.job_id, decided).members
    }
    assert states == {t[0]: MemberState.ADMITTED, t[1]: MemberState.REJECTED}
    assert c.jobs.wrapped_key(t[0], world.job_id).wrapped_key == KEY
    with pytest.raises(PermissionDenied):
        c.jobs.wrapped_key(t[1], world.job_id)
    with pytest.raises(Conflict):  # admitted members cannot be admitted again
        c.jobs.admit(world.publisher, world.job_id, decided)


def test_duplicate_update_is_refused(world: World) -> None:
    world.start(3)
    world.submit(world.trainers[0])
    with pytest.raises(Conflict, match="already submitted"):
        world.submit(world.trainers[0])
    assert world.c.rounds.current(world.job_id).updates_received == 1


def test_deadline_aggregates_retries_and_fails(world: World) -> None:
    c, clock, t = world.c, world.c.clock, world.trainers
    assert isinstance(clock, FakeClock)
    world.start(3)
    world.submit(t[0])
    world.submit(t[1])
    clock.advance(61)
    assert c.rounds.current(world.job_id).state is RoundState.AGGREGATING  # 2 ≥ min 2
    world.publish(1, [t[0], t[1]])
    world.submit(t[2], 2)
    clock.advance(61)
    retry = c.rounds.current(world.job_id)
    assert (retry.number, retry.attempt, retry.updates_received) == (2, 1, 0)
    with pytest.raises(Conflict, match="attempt 0 of round 2 is over"):
        world.submit(t[0], 2, attempt=0)
    world.submit(t[0], 2, attempt=1)
    clock.advance(61)
    job = c.jobs.get(world.job_id)
    assert job.state is JobState.FAILED
    assert job.state_reason == "round 2: 1 update(s) by the deadline, 2 needed, no retries left"
    assert c.rounds.current(world.job_id).state is RoundState.FAILED


def test_ticker_applies_deadlines_once_across_workers(
    world: World, settings: CoordinatorSettings
) -> None:
    world.start(2)
    clock = world.c.clock
    assert isinstance(clock, FakeClock)
    clock.advance(61)
    second_worker = Database(settings.database_url)
    try:
        assert advance_due_jobs(second_worker, clock.now()) == 1
        assert advance_due_jobs(world.c.db, clock.now()) == 0  # already applied
    finally:
        second_worker.dispose()
    tick(world.c)
    current = world.c.rounds.current(world.job_id)
    assert (current.attempt, current.state) == (1, RoundState.COLLECTING)


def test_cancel_stops_training(world: World) -> None:
    world.start(2)
    job = world.c.jobs.cancel(world.publisher, world.job_id)
    assert job.state is JobState.CANCELLED
    with pytest.raises(Conflict, match="job is cancelled"):
        world.submit(world.trainers[0])
    assert world.c.rounds.tick() == 0


def test_nonces_are_single_use_across_workers_and_pruned(
    coordinator: Coordinator, settings: CoordinatorSettings
) -> None:
    first = DatabaseNonceStore(coordinator.db)
    other = Database(settings.database_url)
    try:
        second = DatabaseNonceStore(other)
        assert first.claim("p", "n" * 32, 100.0)
        assert not second.claim("p", "n" * 32, 100.0)
        assert second.claim("q", "n" * 32, 100.0)
        assert first.prune(now=100.5) == 2
        with other.transaction() as session:
            assert session.scalar(select(func.count()).select_from(NonceRow)) == 0
    finally:
        other.dispose()


def test_repository_translates_unique_violations(coordinator: Coordinator) -> None:
    principal = _add_principal(coordinator.db)
    with pytest.raises(Conflict, match="already registered"), coordinator.db.transaction() as s:
        row = PrincipalRow(
            principal=principal,
            signing_public=bytes(32),
            agreement_public=bytes(32),
            display_name="",
            registered_at=0.0,
        )
        PrincipalRepository(s).add(row)
    with coordinator.db.transaction() as s:
        assert JobRepository(s).get_job("job-" + "0" * 32) is None


def test_oversized_spec_is_refused(coordinator: Coordinator) -> None:
    publisher = _add_principal(coordinator.db)
    model = coordinator.blobs.put(b"m0")
    n = 12_000  # feature columns: a spec of more than MAX_SPEC_BYTES
    spec = spec_json()
    spec["data_schema"]["features"] = [{"name": f"column_{i:05d}"} for i in range(n)]
    spec["model"]["architecture"]["n_features"] = n
    request = CreateJob(spec=JobSpec.model_validate(spec), initial_model=model)
    with pytest.raises(PayloadTooLarge, match="job spec is"):
        coordinator.jobs.create(publisher, request)
    assert coordinator.jobs.list_jobs(state=None, publisher=None) == []


def test_concurrent_updates_are_all_counted_once(coordinator: Coordinator) -> None:
    many = World(coordinator, trainers_wanted=8, min_trainers_per_round=8)
    many.trainers += [_add_principal(coordinator.db) for _ in range(5)]
    many.admit(*many.trainers)
    coordinator.jobs.start(many.publisher, many.job_id)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(many.submit, many.trainers))
    current = coordinator.rounds.current(many.job_id)
    assert (current.updates_received, current.state) == (8, RoundState.AGGREGATING)
