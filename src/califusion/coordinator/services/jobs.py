"""Jobs: creation, the publisher's lifecycle moves, joining and admission."""

from __future__ import annotations

import json
import logging
import secrets

from califusion.coordinator.admission import AdmissionPolicy, JoinRequest, OpenRequest
from califusion.coordinator.db.engine import Database
from califusion.coordinator.db.models import JobRow, MemberRow, RoundRow
from califusion.coordinator.db.repositories import JobRepository, PrincipalRepository
from califusion.coordinator.lifecycle import (
    JobAction,
    check_members_change,
    job_transition,
    member_transition,
    start_training,
)
from califusion.coordinator.progress import advance_due_jobs, bump, load_job
from califusion.coordinator.views import job_info, job_spec, job_summary
from califusion.core.clock import Clock
from califusion.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    UnknownPrincipal,
)
from califusion.crypto.encoding import b64d, b64e
from califusion.fl.secagg import SecAggConfig
from califusion.ml.spec import MAX_SPEC_BYTES
from califusion.protocol.jobs import (
    AdmitTrainers,
    CreateJob,
    JobInfo,
    JobSpec,
    JobState,
    JobSummary,
    JoinJob,
    MemberState,
    WrappedKey,
)
from califusion.protocol.secagg import plan_arguments
from califusion.storage.blobs import BlobStore

log = logging.getLogger(__name__)


def new_job_id() -> str:
    return "job-" + secrets.token_hex(16)


def require_publisher(job: JobRow, caller: str, doing: str) -> None:
    if caller != job.publisher:
        raise PermissionDenied(f"only the job's publisher can {doing}")


class JobService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        blobs: BlobStore,
        admission: AdmissionPolicy,
        *,
        max_wrapped_key_bytes: int,
    ) -> None:
        self._db = db
        self._clock = clock
        self._blobs = blobs
        self._admission = admission
        self._max_wrapped_key_bytes = max_wrapped_key_bytes

    def create(self, publisher: str, request: CreateJob) -> JobInfo:
        spec_json = request.spec.model_dump(mode="json")
        spec_size = len(json.dumps(spec_json, separators=(",", ":")).encode())
        if spec_size > MAX_SPEC_BYTES:
            raise PayloadTooLarge(f"job spec is {spec_size} bytes; at most {MAX_SPEC_BYTES}")
        check_secure_plan(request.spec)
        if not self._blobs.exists(request.initial_model):
            raise InvalidInput(
                f"initial_model blob {request.initial_model} does not exist; upload it first "
                "(PUT /v1/blobs)",
                initial_model="blob not found",
            )
        now = self._clock.now()
        with self._db.transaction() as session:
            owner = PrincipalRepository(session).get(publisher)
            if owner is None:
                raise UnknownPrincipal(f"principal {publisher} is not registered")
            row = JobRow(
                job_id=new_job_id(),
                publisher=publisher,
                aggregator_agreement_public=owner.agreement_public,
                spec=spec_json,
                state=JobState.DRAFT.value,
                state_reason="",
                created_at=now,
                current_round=0,
                rounds_completed=0,
                initial_model=request.initial_model,
                final_model=None,
                version=1,
            )
            JobRepository(session).add_job(row)
            log.info("job created", extra={"job_id": row.job_id, "publisher": publisher})
            return job_info(row, [])

    def list_jobs(
        self,
        *,
        state: JobState | None,
        publisher: str | None,
        after: str | None = None,
        limit: int | None = None,
    ) -> list[JobSummary]:
        advance_due_jobs(self._db, self._clock.now())
        with self._db.transaction() as session:
            repo = JobRepository(session)
            jobs = repo.list_jobs(state=state, publisher=publisher, after=after, limit=limit)
            admitted = repo.admitted_counts([job.job_id for job in jobs])
            return [job_summary(job, admitted.get(job.job_id, 0)) for job in jobs]

    def get(self, job_id: str) -> JobInfo:
        with self._db.transaction() as session:
            repo = JobRepository(session)
            job = load_job(repo, job_id, self._clock.now(), lock=False)
            return job_info(job, repo.members(job_id))

    def open(self, caller: str, job_id: str) -> JobInfo:
        return self._move(caller, job_id, JobAction.OPEN)

    def cancel(self, caller: str, job_id: str) -> JobInfo:
        return self._move(caller, job_id, JobAction.CANCEL)

    def _move(self, caller: str, job_id: str, action: JobAction) -> JobInfo:
        with self._db.transaction() as session:
            repo = JobRepository(session)
            job = load_job(repo, job_id, self._clock.now())
            require_publisher(job, caller, f"{action} it")
            target = job_transition(JobState(job.state), action)
            if action is JobAction.OPEN:  # e.g. the reward pool must be in escrow
                self._admission.review_open(OpenRequest(job_id, job_spec(job), job.publisher))
            job.state = target.value
            if action is JobAction.CANCEL:
                job.state_reason = "cancelled by the publisher"
            bump(job)
            log.info("job moved", extra={"job_id": job_id, "action": str(action)})
            return job_info(job, repo.members(job_id))

    def start(self, caller: str, job_id: str) -> JobInfo:
        now = self._clock.now()
        with self._db.transaction() as session:
            repo = JobRepository(session)
            job = load_job(repo, job_id, now)
            require_publisher(job, caller, "start it")
            admitted = repo.member_counts(job_id)[MemberState.ADMITTED]
            state, first = start_training(JobState(job.state), admitted, job_spec(job), now)
            repo.add_round(
                RoundRow(
                    job_id=job_id,
                    number=first.number,
                    attempt=first.attempt,
                    state=first.state.value,
                    model=job.initial_model,
                    opened_at=first.opened_at,
                    deadline=first.deadline,
                    result_model=None,
                    contributors=[],
                    metrics=None,
                )
            )
            job.state = state.value
            job.current_round = first.number
            bump(job)
            log.info("job started", extra={"job_id": job_id, "admitted": admitted})
            return job_info(job, repo.members(job_id))

    def join(self, caller: str, job_id: str, request: JoinJob) -> JobInfo:
        now = self._clock.now()
        with self._db.transaction() as session:
            repo = JobRepository(session)
            job = load_job(repo, job_id, now)
            if caller == job.publisher:
                raise PermissionDenied("a publisher cannot train on its own job")
            check_members_change(JobState(job.state), "joined")
            if repo.member(job_id, caller) is not None:
                raise Conflict(f"{caller} has already joined job {job_id}")
            counts = repo.member_counts(job_id)
            self._admission.review(
                JoinRequest(
                    job_id=job_id,
                    spec=job_spec(job),
                    publisher=job.publisher,
                    trainer=caller,
                    declared_samples=request.declared_samples,
                    pending=counts[MemberState.PENDING],
                    admitted=counts[MemberState.ADMITTED],
                )
            )
            member = MemberRow(
                job_id=job_id,
                trainer=caller,
                state=MemberState.PENDING.value,
                declared_samples=request.declared_samples,
                joined_at=now,
                rounds_contributed=0,
                wrapped_key=None,
            )
            repo.add_member(member)
            bump(job)
            log.info("trainer joined", extra={"job_id": job_id, "trainer": caller})
            return job_info(job, repo.members(job_id))

    def admit(self, caller: str, job_id: str, request: AdmitTrainers) -> JobInfo:
        named = [a.trainer for a in request.admissions] + list(request.rejections)
        if len(set(named)) != len(named):
            raise InvalidInput("a trainer appears more than once in admissions and rejections")
        keys = {a.trainer: b64d(a.wrapped_key) for a in request.admissions}
        for trainer, key in keys.items():
            if not 0 < len(key) <= self._max_wrapped_key_bytes:
                raise PayloadTooLarge(
                    f"wrapped key for {trainer} is {len(key)} bytes; it must be 1 to "
                    f"{self._max_wrapped_key_bytes}"
                )
        with self._db.transaction() as session:
            repo = JobRepository(session)
            job = load_job(repo, job_id, self._clock.now())
            require_publisher(job, caller, "admit or reject trainers")
            check_members_change(JobState(job.state), "admitted or rejected")
            decisions = [(t, MemberState.ADMITTED) for t in keys] + [
                (t, MemberState.REJECTED) for t in request.rejections
            ]
            for trainer, target in decisions:
                member = repo.member(job_id, trainer)
                if member is None:
                    raise NotFound(f"{trainer} has not asked to join job {job_id}")
                member.state = member_transition(MemberState(member.state), target).value
                member.wrapped_key = keys.get(trainer)
            bump(job)
            log.info(
                "admissions decided",
                extra={
                    "job_id": job_id,
                    "admitted": len(keys),
                    "rejected": len(request.rejections),
                },
            )
            return job_info(job, repo.members(job_id))

    def wrapped_key(self, caller: str, job_id: str) -> WrappedKey:
        with self._db.transaction() as session:
            repo = JobRepository(session)
            load_job(repo, job_id, self._clock.now(), lock=False)
            member = repo.member(job_id, caller)
            if member is None or member.state != MemberState.ADMITTED or not member.wrapped_key:
                raise PermissionDenied(f"{caller} is not an admitted trainer of job {job_id}")
            return WrappedKey(job_id=job_id, wrapped_key=b64e(member.wrapped_key))


def check_secure_plan(spec: JobSpec) -> None:
    """Refuse a secure or blind job whose SecAgg+ parameters no round of ``trainers_wanted``
    trainers could satisfy (a corruption bound too large for so few, say), before it exists:
    otherwise each of its rounds would open only to abort."""
    if spec.aggregation_mode == "publisher":
        return
    n = spec.trainers_wanted
    try:
        SecAggConfig.plan(range(n), **plan_arguments(spec, n))
    except InvalidInput as error:
        raise InvalidInput(
            f"secure aggregation cannot run with the {n} trainer(s) this job wants: {error}",
            secure_aggregation=str(error),
        ) from error
