"""/v1/jobs/{job_id}/rounds/{number}/secagg: a round's SecAgg+ session; /v1/coordinator."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from califusion.coordinator.deps import Caller, SecAgg
from califusion.coordinator.routes.jobs import JobIdPath
from califusion.coordinator.routes.rounds import RoundPath
from califusion.protocol.secagg import (
    CoordinatorInfo,
    PostSecAggMessage,
    SecAggEvidence,
    SecAggInbox,
    SecAggSession,
)

router = APIRouter(prefix="/v1/jobs/{job_id}/rounds/{number}/secagg", tags=["secure aggregation"])
coordinator_router = APIRouter(prefix="/v1/coordinator", tags=["coordinator"])


@coordinator_router.get("", response_model=CoordinatorInfo)
def coordinator_identity(_caller: Caller, secagg: SecAgg) -> CoordinatorInfo:
    """The coordinator's public signing key: it signs round transcripts."""
    return secagg.coordinator_info()


@router.get("", response_model=SecAggSession)
def session(caller: Caller, job_id: JobIdPath, number: RoundPath, secagg: SecAgg) -> SecAggSession:
    """Publisher or admitted trainer: the current attempt's session (opened on first request)."""
    return secagg.session(caller, job_id, number)


@router.post("/messages", response_model=SecAggInbox)
def post_message(
    caller: Caller,
    job_id: JobIdPath,
    number: RoundPath,
    payload: PostSecAggMessage,
    secagg: SecAgg,
) -> SecAggInbox:
    """Participant: one protocol message, signed by and sent as the caller; its inbox after."""
    return secagg.post(caller, job_id, number, payload)


@router.get("/inbox", response_model=SecAggInbox)
def inbox(
    caller: Caller,
    job_id: JobIdPath,
    number: RoundPath,
    attempt: Annotated[int, Query(ge=0)],
    secagg: SecAgg,
) -> SecAggInbox:
    """Participant: the session's stage and the server messages released to the caller."""
    return secagg.inbox(caller, job_id, number, attempt)


@router.get("/evidence", response_model=SecAggEvidence)
def evidence(
    caller: Caller, job_id: JobIdPath, number: RoundPath, secagg: SecAgg
) -> SecAggEvidence:
    """Publisher or admitted trainer: the signed transcript and event log of a finished round."""
    return secagg.evidence(caller, job_id, number)
