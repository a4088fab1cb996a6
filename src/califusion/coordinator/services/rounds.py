"""Rounds: trainers submit updates, the publisher's agent publishes each result."""

from __future__ import annotations

import logging

from califusion.coordinator.db.engine import Database
from califusion.coordinator.db.models import RoundRow, UpdateRow
from califusion.coordinator.db.repositories import JobRepository
from califusion.coordinator.lifecycle import accept_update, finish_round
from califusion.coordinator.progress import advance_due_jobs, bump, current_round, load_job
from califusion.coordinator.services.jobs import require_publisher
from califusion.coordinator.views import (
    job_info,
    job_spec,
    round_info,
    store_round_status,
    update_info,
)
from califusion.core.clock import Clock
from califusion.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied
from califusion.protocol.jobs import (
    JobInfo,
    JobState,
    MemberState,
    PublishResult,
    RoundInfo,
    SubmitUpdate,
    UpdateInfo,
)
from califusion.storage.blobs import BlobStore

log = logging.getLogger(__name__)


class RoundService:
    def __init__(self, db: Database, clock: Clock, blobs: BlobStore) -> None:
        self._db = db
        self._clock = clock
        self._blobs = blobs

    def _require_blob(self, digest: str, field: str) -> None:
        if not self._blobs.exists(digest):
            raise InvalidInput(
                f"{field} blob {digest} does not exist; upload it first (PUT /v1/blobs)",
                **{field: "blob not found"},
            )

    def list_rounds(self, job_id: str) -> list[RoundInfo]:
        with self._db.transaction() as session:
            repo = JobRepository(session)
            load_job(repo, job_id, self._clock.now(), lock=False)
            counts = repo.update_counts(job_id)
            return [
                round_info(row, counts.get((row.number, row.attempt), 0))
                for row in repo.rounds(job_id)
            ]

    def current(self, job_id: str) -> RoundInfo:
        with self._db.transaction() as session:
            repo = JobRepository(session)
            job = load_job(repo, job_id, self._clock.now(), lock=False)
            found = current_round(repo, job)
            if found is None:
                raise NotFound(f"job {job_id} has no round yet: it is {job.state}")
            row, status = found
            return round_info(row, status.updates)

    def submit_update(
        self, caller: str, job_id: str, number: int, request: SubmitUpdate
    ) -> RoundInfo:
        now = self._clock.now()
        with self._db.transaction() as session:
            repo = JobRepository(session)
            job = load_job(repo, job_id, now)
            member = repo.member(job_id, caller)
            if member is None or member.state != MemberState.ADMITTED:
                raise PermissionDenied(f"{caller} is not an admitted trainer of job {job_id}")
            mode = job_spec(job).aggregation_mode
            if mode != "publisher":
                raise Conflict(
                    f"job {job_id} aggregates in {mode} mode: take part in the round's secure "
                    f"aggregation at /v1/jobs/{job_id}/rounds/{number}/secagg instead",
                    aggregation_mode=mode,
                )
            found = current_round(repo, job)
            row, status = found if found is not None else (None, None)
            already = row is not None and any(
                u.trainer == caller for u in repo.updates(job_id, number, request.attempt)
            )
            counts = repo.member_counts(job_id)
            accepted = accept_update(
                JobState(job.state),
                status,
                number,
                request.attempt,
                already_submitted=already,
                admitted=counts[MemberState.ADMITTED],
            )
            assert row is not None  # accept_update refuses a job without a current round
            self._require_blob(request.update, "update")
            repo.add_update(
                UpdateRow(
                    job_id=job_id,
                    round_number=number,
                    attempt=request.attempt,
                    trainer=caller,
                    update_digest=request.update,
                    submitted_at=now,
                )
            )
            store_round_status(row, accepted)
            bump(job)
            log.info(
                "update received",
                extra={"job_id": job_id, "round": number, "attempt": request.attempt},
            )
            return round_info(row, accepted.updates)

    def list_updates(self, caller: str, job_id: str, number: int) -> list[UpdateInfo]:
        with self._db.transaction() as session:
            repo = JobRepository(session)
            job = load_job(repo, job_id, self._clock.now(), lock=False)
            require_publisher(job, caller, "list a round's updates")
            row = repo.round(job_id, number)
            if row is None:
                raise NotFound(f"job {job_id} has no round {number}")
            return [update_info(u) for u in repo.updates(job_id, number, row.attempt)]

    def publish_result(
        self, caller: str, job_id: str, number: int, request: PublishResult
    ) -> JobInfo:
        """Close the round; the job as it is afterwards (next round open, or completed)."""
        now = self._clock.now()
        with self._db.transaction() as session:
            repo = JobRepository(session)
            job = load_job(repo, job_id, now)
            require_publisher(job, caller, "publish a round's result")
            found = current_round(repo, job)
            row, status = found if found is not None else (None, None)
            submitters = (
                [u.trainer for u in repo.updates(job_id, number, request.attempt)]
                if row is not None
                else []
            )
            spec = job_spec(job)
            result = finish_round(
                JobState(job.state),
                status,
                number,
                request.attempt,
                contributors=request.contributors,
                submitters=submitters,
                spec=spec,
                now=now,
            )
            assert row is not None  # finish_round refuses a job without a current round
            self._require_blob(request.model, "model")
            store_round_status(row, result.closed)
            row.result_model = request.model
            row.contributors = list(request.contributors)
            row.metrics = request.metrics.model_dump(mode="json")
            for trainer in request.contributors:
                member = repo.member(job_id, trainer)
                if member is not None:
                    member.rounds_contributed += 1
            job.rounds_completed += 1
            job.state = result.job_state.value
            if result.next_round is None:
                job.final_model = request.model
                job.state_reason = f"all {spec.rounds} round(s) completed"
            else:
                nxt = result.next_round
                repo.add_round(
                    RoundRow(
                        job_id=job_id,
                        number=nxt.number,
                        attempt=nxt.attempt,
                        state=nxt.state.value,
                        model=request.model,
                        opened_at=nxt.opened_at,
                        deadline=nxt.deadline,
                        result_model=None,
                        contributors=[],
                        metrics=None,
                    )
                )
                job.current_round = nxt.number
            bump(job)
            log.info(
                "round closed",
                extra={"job_id": job_id, "round": number, "job_state": job.state},
            )
            return job_info(job, repo.members(job_id))

    def tick(self) -> int:
        """Apply every passed round deadline; how many jobs changed."""
        return advance_due_jobs(self._db, self._clock.now())
