"""One job in detail: timeline, contributors, live charts, and the final model's download."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from califusion.core.errors import NotFound
from califusion.protocol import JobInfo, JobState, MemberState, RoundInfo
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


def _live_context(request: Request, job_id: str) -> dict[str, Any]:
    agent = agent_of(request)
    job = agent.client.job(job_id)
    rounds = _rounds(request, job)
    members = [m for m in job.members if m.state != MemberState.REJECTED]
    return {
        "job": job,
        "rounds": sorted(rounds, key=lambda r: r.number, reverse=True),
        "members": members,
        "names": {m.trainer: agent.display_name(m.trainer) for m in members},
        "chart": chart_data(rounds),
        "live": job.state in LIVE,
        "is_publisher": job.publisher == agent.principal,
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
