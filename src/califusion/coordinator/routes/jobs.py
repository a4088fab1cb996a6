"""/v1/jobs: create and list jobs, the publisher's moves, joining and admission."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from califusion.coordinator.deps import Caller, Jobs
from califusion.protocol.jobs import (
    AdmitTrainers,
    CreateJob,
    JobInfo,
    JobState,
    JobSummary,
    JoinJob,
    WrappedKey,
)

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
MAX_PAGE = 200  # jobs per page of GET /v1/jobs

JobIdPath = Annotated[str, Path(pattern=r"^job-[0-9a-f]{32}$")]


@router.post("", response_model=JobInfo, status_code=201)
def create_job(caller: Caller, payload: CreateJob, jobs: Jobs) -> JobInfo:
    """Create a draft job; the caller is its publisher and aggregator."""
    return jobs.create(caller, payload)


@router.get("", response_model=list[JobSummary])
def list_jobs(
    _caller: Caller,
    jobs: Jobs,
    state: JobState | None = None,
    publisher: Annotated[str | None, Query(max_length=63)] = None,
    after: Annotated[
        str | None, Query(max_length=64, description="the last job id of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = MAX_PAGE,
) -> list[JobSummary]:
    """Jobs oldest first, at most ``limit``; the next page starts ``after`` the last one."""
    return jobs.list_jobs(state=state, publisher=publisher, after=after, limit=limit)


@router.get("/{job_id}", response_model=JobInfo)
def get_job(_caller: Caller, job_id: JobIdPath, jobs: Jobs) -> JobInfo:
    return jobs.get(job_id)


@router.post("/{job_id}/open", response_model=JobInfo)
def open_job(caller: Caller, job_id: JobIdPath, jobs: Jobs) -> JobInfo:
    """draft → open: trainers may join."""
    return jobs.open(caller, job_id)


@router.post("/{job_id}/start", response_model=JobInfo)
def start_job(caller: Caller, job_id: JobIdPath, jobs: Jobs) -> JobInfo:
    """open → training: opens round 1 once min_trainers_per_round are admitted."""
    return jobs.start(caller, job_id)


@router.post("/{job_id}/cancel", response_model=JobInfo)
def cancel_job(caller: Caller, job_id: JobIdPath, jobs: Jobs) -> JobInfo:
    return jobs.cancel(caller, job_id)


@router.post("/{job_id}/join", response_model=JobInfo)
def join_job(caller: Caller, job_id: JobIdPath, payload: JoinJob, jobs: Jobs) -> JobInfo:
    """Ask to train (job open or training); the member waits, pending, for admission."""
    return jobs.join(caller, job_id, payload)


@router.post("/{job_id}/admissions", response_model=JobInfo)
def admit_trainers(
    caller: Caller, job_id: JobIdPath, payload: AdmitTrainers, jobs: Jobs
) -> JobInfo:
    """Publisher: admit pending trainers (with their wrapped job key) or reject them."""
    return jobs.admit(caller, job_id, payload)


@router.get("/{job_id}/key", response_model=WrappedKey)
def get_wrapped_key(caller: Caller, job_id: JobIdPath, jobs: Jobs) -> WrappedKey:
    """The job key wrapped to the calling trainer, once admitted."""
    return jobs.wrapped_key(caller, job_id)
