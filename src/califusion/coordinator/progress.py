"""Loading a job for a request: lock it, and apply any round deadline that has passed.

Every read and write of a job goes through :func:`load_job`, and the background ticker calls
:func:`advance_due_jobs`; both apply :func:`~califusion.coordinator.lifecycle.advance_round`
under the job's lock, so a deadline takes effect exactly once however many workers see it.
"""

from __future__ import annotations

import logging

from califusion.coordinator.db.engine import Database
from califusion.coordinator.db.models import JobRow, RoundRow
from califusion.coordinator.db.repositories import JobRepository
from califusion.coordinator.lifecycle import RoundStatus, advance_round, is_due
from califusion.coordinator.views import job_spec, round_status, store_round_status
from califusion.core.errors import NotFound
from califusion.protocol.jobs import JobState

log = logging.getLogger(__name__)


def bump(job: JobRow) -> None:
    """Mark a change of the job or its rounds (the version is a compare-and-set guard)."""
    job.version = job.version + 1


def current_round(repo: JobRepository, job: JobRow) -> tuple[RoundRow, RoundStatus] | None:
    if job.current_round == 0:
        return None
    row = repo.round(job.job_id, job.current_round)
    if row is None:
        return None
    return row, round_status(row, repo.count_updates(job.job_id, row.number, row.attempt))


def _apply_deadline(repo: JobRepository, job: JobRow, now: float) -> bool:
    found = current_round(repo, job)
    if found is None:
        return False
    row, status = found
    progress = advance_round(JobState(job.state), status, job_spec(job), now)
    if progress.round == status and progress.job_state == job.state:
        return False
    store_round_status(row, progress.round)
    job.state = progress.job_state.value
    if progress.reason:
        job.state_reason = progress.reason
    bump(job)
    log.info(
        "round deadline applied",
        extra={
            "job_id": job.job_id,
            "round": row.number,
            "attempt": row.attempt,
            "round_state": row.state,
            "job_state": job.state,
        },
    )
    return True


def load_job(repo: JobRepository, job_id: str, now: float, *, lock: bool = True) -> JobRow:
    """The job, with its due deadline applied. ``lock=False`` (reads) locks only when a deadline
    is actually due."""
    job = repo.get_job(job_id, lock=lock)
    if job is None:
        raise NotFound(f"no job {job_id}")
    if not lock:
        found = current_round(repo, job)
        if found is None or not is_due(JobState(job.state), found[1], now):
            return job
        job = repo.get_job(job_id, lock=True)
        assert job is not None  # jobs are never deleted
    _apply_deadline(repo, job, now)
    return job


def advance_due_jobs(db: Database, now: float) -> int:
    """Apply every passed deadline (the ticker's work); how many jobs changed."""
    with db.transaction() as session:
        due = JobRepository(session).due_job_ids(now)
    changed = 0
    for job_id in due:
        # One transaction per job: a slow or failing job does not hold up the others.
        with db.transaction() as session:
            repo = JobRepository(session)
            job = repo.get_job(job_id, lock=True)
            if job is not None and _apply_deadline(repo, job, now):
                changed += 1
    return changed
