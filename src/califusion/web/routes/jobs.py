"""One job in detail: timeline, contributors, live charts, and the final model's download."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from califusion.core.errors import CaliFusionError, NotFound
from califusion.ledger.escrow_ids import escrow_account
from califusion.protocol import JobInfo, JobState, MemberState, RoundInfo
from califusion.web.escrow import EscrowView, escrow_view, moves_money
from califusion.web.present import chart_data
from califusion.web.render import agent_of, renderer_of
from califusion.web.routes._common import JobIdPath

__all__ = ["router"]

router = APIRouter()

LIVE = frozenset({JobState.OPEN, JobState.TRAINING})


def _rounds(request: Request, job: JobInfo) -> list[RoundInfo]:
    if job.current_round == 0:
        return []
    try:
        return agent_of(request).client.rounds(job.job_id)
    except NotFound:
        return []


def _escrow(request: Request, job: JobInfo) -> tuple[EscrowView | None, str | None]:
    """The job's escrow (None if it moves no money or no escrow is served) or why not read."""
    agent = agent_of(request)
    if not moves_money(job.spec):
        return None, None
    try:
        if not agent.escrow.served():
            return None, None
        status = agent.escrow.status(job.job_id)
        rows = agent.money.history(escrow_account(job.job_id), limit=200)
    except CaliFusionError as exc:
        return None, str(exc)
    return escrow_view(status, rows), None


def _payouts_pending(job: JobInfo, escrow: EscrowView | None) -> bool:
    """An ended job whose escrow has not settled or not paid yet: keep the page polling."""
    if escrow is None or not escrow.bound or job.state == JobState.DRAFT:
        return False
    owed = escrow.funded > 0 or bool(escrow.stakes)
    return escrow.outcome is None or (owed and not escrow.payments)


def _funding(request: Request, job: JobInfo) -> dict[str, Any] | None:
    """For a publisher's draft: the balance and fee that opening (funding the pool) needs."""
    agent = agent_of(request)
    if job.state != JobState.DRAFT or job.spec.reward_pool == 0:
        return None
    try:
        if not agent.escrow.served():
            return None
        return {"token": agent.money.token(), "balance": agent.money.balance()}
    except CaliFusionError:
        return None


def _live_context(request: Request, job_id: str) -> dict[str, Any]:
    agent = agent_of(request)
    job = agent.client.job(job_id)
    rounds = _rounds(request, job)
    members = [m for m in job.members if m.state != MemberState.REJECTED]
    is_publisher = job.publisher == agent.principal
    escrow, escrow_error = _escrow(request, job)
    return {
        "job": job,
        "rounds": sorted(rounds, key=lambda r: r.number, reverse=True),
        "checks": agent.checks.for_job(job, rounds),
        "members": members,
        "names": {
            who: agent.display_name(who) for who in [job.publisher, *(m.trainer for m in members)]
        },
        "chart": chart_data(rounds),
        "live": job.state in LIVE or _payouts_pending(job, escrow),
        "is_publisher": is_publisher,
        "escrow": escrow,
        "escrow_error": escrow_error,
        "token": agent.money.display_token(),
        "funding": _funding(request, job) if is_publisher else None,
        "action_error": agent.publisher.action_error(job_id) if is_publisher else None,
        "has_key": agent.publisher.has_key(job_id),
        "has_validation": agent.publisher.has_validation(job_id),
        "error": agent.publisher.last_error(job_id),
        "mine": agent.trainer.record(job_id),
        "me": agent.principal,
    }


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: JobIdPath) -> Response:
    return renderer_of(request).page(request, "job.html", **_live_context(request, job_id))


@router.get("/jobs/{job_id}/live", response_class=HTMLResponse)
def job_live(request: Request, job_id: JobIdPath) -> Response:
    """The parts of the job page that change while it trains (polled while it is live)."""
    return renderer_of(request).page(request, "_job_live.html", **_live_context(request, job_id))


@router.get("/jobs/{job_id}/model.safetensors")
def final_model(request: Request, job_id: JobIdPath) -> Response:
    """The final weights, decrypted by this agent with the job key it holds (publisher only)."""
    job, data = agent_of(request).publisher.final_model(job_id)
    filename = f"{job.job_id}-final.safetensors"
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"content-disposition": f'attachment; filename="{filename}"'},
    )
