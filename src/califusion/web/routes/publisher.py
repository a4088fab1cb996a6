"""The publisher board: jobs by state, the create-job form, and the lifecycle buttons."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from califusion.core.errors import CaliFusionError, Conflict, InvalidInput
from califusion.protocol import JobState
from califusion.web.jobform import (
    ARCHITECTURES,
    LABELS,
    MODES,
    OPTIMIZERS,
    STRATEGIES,
    blank_form,
    parse_job_form,
)
from califusion.web.render import agent_of, is_htmx, renderer_of
from califusion.web.routes._common import Form, JobIdPath

__all__ = ["router"]

router = APIRouter()

COLUMNS = (
    ("draft", "Draft", (JobState.DRAFT,)),
    ("open", "Open", (JobState.OPEN,)),
    ("training", "Training", (JobState.TRAINING,)),
    ("completed", "Completed", (JobState.COMPLETED,)),
)
ENDED = (JobState.CANCELLED, JobState.FAILED)
MAX_BOARD_JOBS = 200


def _board_context(request: Request) -> dict[str, Any]:
    agent = agent_of(request)
    summaries = agent.client.list_jobs(publisher=agent.principal)[-MAX_BOARD_JOBS:]
    jobs = [agent.client.job(s.job_id) for s in reversed(summaries)]
    columns = [
        (key, title, [job for job in jobs if job.state in states]) for key, title, states in COLUMNS
    ]
    ended = [job for job in jobs if job.state in ENDED]
    errors = {job.job_id: agent.publisher.last_error(job.job_id) for job in jobs}
    keys = {job.job_id: agent.publisher.has_key(job.job_id) for job in jobs}
    action_errors = {job.job_id: agent.publisher.action_error(job.job_id) for job in jobs}
    return {
        "columns": columns,
        "ended": ended,
        "errors": errors,
        "keys": keys,
        "action_errors": action_errors,
    }


@router.get("/", response_class=HTMLResponse)
def board(request: Request) -> Response:
    return renderer_of(request).page(request, "board.html", **_board_context(request))


@router.get("/board/columns", response_class=HTMLResponse)
def board_columns(request: Request) -> Response:
    """The board's columns alone, polled by the board page."""
    return renderer_of(request).page(request, "_board.html", **_board_context(request))


def _form_page(request: Request, form: object, status_code: int = 200) -> Response:
    return renderer_of(request).page(
        request,
        "job_new.html",
        status_code=status_code,
        form=form,
        architectures=ARCHITECTURES,
        optimizers=OPTIMIZERS,
        strategies=STRATEGIES,
        modes=MODES,
        labels=LABELS,
    )


@router.get("/jobs/new", response_class=HTMLResponse)
def new_job(request: Request) -> Response:
    return _form_page(request, blank_form())


@router.post("/jobs", response_class=HTMLResponse)
def create_job(request: Request, data: Form) -> Response:
    """Validate the form; on success create the job and go to its page."""
    agent = agent_of(request)
    form = parse_job_form(data, agent.config.token_decimals)
    if not form.ok or form.spec is None:
        return _form_page(request, form, 422)
    try:
        job = agent.publisher.create(form.spec, form.validation, open_now=form.open_now)
    except InvalidInput as exc:  # the validation file does not fit the schema, for example
        field = "validation" if form.validation is not None else None
        if field:
            form.errors[field] = str(exc)
        else:
            form.general.append(str(exc))
        return _form_page(request, form, 422)
    return RedirectResponse(f"/jobs/{job.job_id}", status_code=303)


@router.post("/jobs/{job_id}/{action}", response_class=HTMLResponse)
def job_action(
    request: Request,
    job_id: JobIdPath,
    action: Annotated[str, Path(pattern="^(open|start|cancel)$")],
    data: Form,
) -> Response:
    """open / start / cancel. htmx (the board) gets the board back; a plain form a redirect."""
    agent = agent_of(request)
    message: str | None = None
    try:
        agent.publisher.act(job_id, action)
    except CaliFusionError as exc:
        message = str(exc)
    if not is_htmx(request):
        on_job_page = data.get("view") == "actions"
        if message is not None and not on_job_page:
            raise IllegalMove(message)
        # the job page shows a refusal beside the button (PublisherDesk.action_error)
        return RedirectResponse(f"/jobs/{job_id}" if on_job_page else "/", status_code=303)
    return renderer_of(request).page(
        request, "_board.html", message=message, **_board_context(request)
    )


class IllegalMove(Conflict):
    """A lifecycle button the coordinator refused (shown on an error page without htmx)."""
