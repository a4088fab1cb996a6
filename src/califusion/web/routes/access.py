"""Model access: completed models on sale, the buy confirmation, the wait, the download."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from califusion.core.errors import CaliFusionError, PermissionDenied
from califusion.protocol import JobInfo, JobState
from califusion.web.render import agent_of, renderer_of
from califusion.web.routes._common import Form, JobIdPath

__all__ = ["router"]

router = APIRouter()

MAX_LISTED = 100


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request) -> Response:
    """Completed jobs whose model is on sale (a price set), newest first."""
    client = agent_of(request).client
    summaries = client.list_jobs(state=JobState.COMPLETED)[-MAX_LISTED:]
    jobs = [client.job(s.job_id) for s in reversed(summaries)]
    on_sale = [job for job in jobs if job.spec.price is not None]
    return renderer_of(request).page(request, "models.html", jobs=on_sale)


def _access_context(request: Request, job: JobInfo, **extra: Any) -> dict[str, Any]:
    agent = agent_of(request)
    context: dict[str, Any] = {
        "job": job,
        "is_publisher": job.publisher == agent.principal,
        "purchase": None,
        "token": agent.money.display_token(),
        "balance": None,
        "ledger_error": None,
        "problem": None,
        **extra,
    }
    try:
        context["purchase"] = agent.buyer.purchase(job)
        context["token"] = agent.money.token()
        context["balance"] = agent.money.balance()
    except CaliFusionError as exc:
        context["ledger_error"] = str(exc)
    return context


@router.get("/jobs/{job_id}/access", response_class=HTMLResponse)
def access_page(request: Request, job_id: JobIdPath) -> Response:
    """Buy access: price, fee and balance before paying; then the wait; then the download."""
    job = agent_of(request).client.job(job_id)
    return renderer_of(request).page(request, "access.html", **_access_context(request, job))


@router.get("/jobs/{job_id}/access/status", response_class=HTMLResponse)
def access_status(request: Request, job_id: JobIdPath) -> Response:
    """The purchase's state alone, polled while the publisher's agent has not granted the key."""
    job = agent_of(request).client.job(job_id)
    return renderer_of(request).page(
        request, "_access_status.html", **_access_context(request, job)
    )


@router.post("/jobs/{job_id}/access/buy", response_class=HTMLResponse)
def buy(request: Request, job_id: JobIdPath, data: Form) -> Response:
    """Pay the price into the job's escrow (never twice), then wait for the key."""
    agent = agent_of(request)
    job = agent.client.job(job_id)
    try:
        agent.buyer.buy(job_id)
    except CaliFusionError as exc:
        context = _access_context(request, job, problem=str(exc))
        return renderer_of(request).page(request, "access.html", status_code=409, **context)
    return RedirectResponse(f"/jobs/{job_id}/access", status_code=303)


@router.get("/jobs/{job_id}/access/model.safetensors")
def bought_model(request: Request, job_id: JobIdPath) -> Response:
    """The bought model, its key unwrapped and the weights decrypted by this agent."""
    agent = agent_of(request)
    job = agent.client.job(job_id)
    if not agent.buyer.on_sale(job):
        raise PermissionDenied(f"{job_id} has no model on sale")
    data = agent.buyer.model_bytes(job)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"content-disposition": f'attachment; filename="{job.job_id}-model.safetensors"'},
    )
