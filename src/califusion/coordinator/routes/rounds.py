"""/v1/jobs/{job_id}/rounds: the training rounds, their updates and results."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from califusion.coordinator.deps import Caller, Rounds
from califusion.coordinator.routes.jobs import JobIdPath
from califusion.protocol.jobs import JobInfo, PublishResult, RoundInfo, SubmitUpdate, UpdateInfo

router = APIRouter(prefix="/v1/jobs/{job_id}/rounds", tags=["rounds"])

RoundPath = Annotated[int, Path(ge=1, le=10_000)]


@router.get("", response_model=list[RoundInfo])
def list_rounds(_caller: Caller, job_id: JobIdPath, rounds: Rounds) -> list[RoundInfo]:
    return rounds.list_rounds(job_id)


@router.get("/current", response_model=RoundInfo)
def current_round(_caller: Caller, job_id: JobIdPath, rounds: Rounds) -> RoundInfo:
    return rounds.current(job_id)


@router.post("/{number}/updates", response_model=RoundInfo, status_code=201)
def submit_update(
    caller: Caller, job_id: JobIdPath, number: RoundPath, payload: SubmitUpdate, rounds: Rounds
) -> RoundInfo:
    """Admitted trainer: submit this attempt's sealed update (once)."""
    return rounds.submit_update(caller, job_id, number, payload)


@router.get("/{number}/updates", response_model=list[UpdateInfo])
def list_updates(
    caller: Caller, job_id: JobIdPath, number: RoundPath, rounds: Rounds
) -> list[UpdateInfo]:
    """Publisher: the updates of the round's current attempt."""
    return rounds.list_updates(caller, job_id, number)


@router.post("/{number}/result", response_model=JobInfo)
def publish_result(
    caller: Caller, job_id: JobIdPath, number: RoundPath, payload: PublishResult, rounds: Rounds
) -> JobInfo:
    """Publisher: close an aggregating round with the next global model; returns the job."""
    return rounds.publish_result(caller, job_id, number, payload)
