"""The trainer view: open jobs, the join flow with a local data check, and my jobs."""

from __future__ import annotations

import time
from pathlib import Path as FilePath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData, UploadFile

from califusion.core.errors import CaliFusionError, DataSchemaError, InvalidInput
from califusion.protocol import JobInfo, JobState
from califusion.web.money import job_tags
from califusion.web.render import agent_of, renderer_of
from califusion.web.routes._common import Form, JobIdPath
from califusion.web.training import TrainingRecord

__all__ = ["router"]

router = APIRouter()

JOINABLE = (JobState.OPEN, JobState.TRAINING)
MAX_LISTED = 100


def _open_jobs(request: Request) -> list[JobInfo]:
    client = agent_of(request).client
    jobs: list[JobInfo] = []
    for state in JOINABLE:
        for summary in client.list_jobs(state=state)[-MAX_LISTED:]:
            jobs.append(client.job(summary.job_id))
    return sorted(jobs, key=lambda j: j.created_at, reverse=True)


def _earnings(request: Request, records: list[TrainingRecord]) -> dict[str, Any]:
    """Escrow payments received for my jobs: per job, and cumulative over time (for the chart).

    Read from my ledger blocks whose memo is an escrow payment naming one of my jobs; the chart
    plots tokens as floats (display only), the table shows exact amounts."""
    desk = agent_of(request).money
    tags = job_tags([r.job_id for r in records])
    try:
        payouts = desk.payouts(tags)
        decimals = desk.token().decimals
    except CaliFusionError as exc:
        return {"by_job": {}, "chart": {"time": [], "earned": []}, "error": str(exc)}
    by_job: dict[str, int] = {}
    times: list[float | None] = []
    totals: list[float | None] = []
    total = 0
    for row in payouts:
        assert row.escrow is not None
        job_id = tags[row.escrow.tag]
        by_job[job_id] = by_job.get(job_id, 0) + row.amount
        total += row.amount
        times.append(row.time_s)
        totals.append(total / 10**decimals)
    if payouts:  # from the first join (nothing earned) to now: a step line, not a lone point
        start = min([r.joined_at for r in records] + [payouts[0].time_s])
        times = [start, *times, max(time.time(), payouts[-1].time_s)]
        totals = [0.0, *totals, totals[-1]]
    return {"by_job": by_job, "chart": {"time": times, "earned": totals}, "error": None}


def _trainer_context(request: Request) -> dict[str, Any]:
    agent = agent_of(request)
    records = agent.trainer.records()
    return {
        "open_jobs": _open_jobs(request),
        "records": records,
        "joined": {r.job_id for r in records},
        "earnings": _earnings(request, records),
    }


@router.get("/trainer", response_class=HTMLResponse)
def trainer_page(request: Request) -> Response:
    return renderer_of(request).page(request, "trainer.html", **_trainer_context(request))


@router.get("/trainer/live", response_class=HTMLResponse)
def trainer_live(request: Request) -> Response:
    return renderer_of(request).page(request, "_trainer_live.html", **_trainer_context(request))


STAKE_FEES = 2  # staking by ICRC-2: the approve, then the escrow's transfer_from


def _tokens(request: Request, job: JobInfo) -> dict[str, Any]:
    """What the join flow shows about money: balance, the fees staking costs, whether the stake
    goes into an escrow (None and a reason if the ledger cannot be read)."""
    agent = agent_of(request)
    desk = agent.money
    try:
        token = desk.token()
        staking = agent.trainer.staking(job.spec) and job.spec.stake > 0
        return {
            "token": token,
            "balance": desk.balance(),
            "staking": staking,
            "stake_fees": STAKE_FEES * token.fee if staking else 0,
            "ledger_error": None,
        }
    except CaliFusionError as exc:
        return {
            "token": desk.display_token(),
            "balance": None,
            "staking": False,
            "stake_fees": 0,
            "ledger_error": str(exc),
        }


def _join_page(
    request: Request,
    job: JobInfo,
    *,
    data_path: str = "",
    problem: CaliFusionError | None = None,
    samples: int | None = None,
    status_code: int = 200,
) -> Response:
    agent = agent_of(request)
    return renderer_of(request).page(
        request,
        "join.html",
        status_code=status_code,
        job=job,
        data_path=data_path,
        problem=problem,
        samples=samples,
        already=agent.trainer.record(job.job_id) is not None
        or any(m.trainer == agent.principal for m in job.members),
        joinable=job.state in JOINABLE,
        **_tokens(request, job),
    )


@router.get("/trainer/jobs/{job_id}/join", response_class=HTMLResponse)
def join_page(request: Request, job_id: JobIdPath) -> Response:
    return _join_page(request, agent_of(request).client.job(job_id))


def _data_path(request: Request, data: FormData) -> FilePath:
    """The path typed, or the uploaded file kept in this agent's folder."""
    agent = agent_of(request)
    upload = data.get("upload")
    if isinstance(upload, UploadFile) and upload.filename:
        return agent.trainer.store_upload(
            upload.filename, upload.file, agent.config.max_upload_bytes
        )
    text = str(data.get("path", "")).strip()
    if not text:
        raise InvalidInput("choose a data file: type its full path or pick it to upload")
    return FilePath(text).expanduser()


@router.post("/trainer/jobs/{job_id}/check", response_class=HTMLResponse)
def check_data(request: Request, job_id: JobIdPath, data: Form) -> Response:
    """Validate a local file against the job's schema; show errors by row and column."""
    job = agent_of(request).client.job(job_id)
    path = ""
    try:
        file = _data_path(request, data)
        path = str(file)
        dataset = agent_of(request).trainer.check(job, file)
    except (DataSchemaError, InvalidInput) as exc:
        return renderer_of(request).page(
            request, "_check.html", job=job, data_path=path, problem=exc, samples=None
        )
    return renderer_of(request).page(
        request,
        "_check.html",
        job=job,
        data_path=path,
        problem=None,
        samples=dataset.num_samples,
        **_tokens(request, job),
    )


@router.post("/trainer/jobs/{job_id}/join", response_class=HTMLResponse)
def join(request: Request, job_id: JobIdPath, data: Form) -> Response:
    """Join with the checked file; training starts in this process once admitted."""
    agent = agent_of(request)
    job = agent.client.job(job_id)
    path = str(data.get("path", "")).strip()
    try:
        agent.trainer.join(job, FilePath(path))
    except CaliFusionError as exc:
        return _join_page(request, job, data_path=path, problem=exc, status_code=422)
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)
