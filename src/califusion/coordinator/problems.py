"""The one place where errors become HTTP responses: RFC 9457 problem bodies.

Every :class:`CaliFusionError` is answered with ``error.problem()`` and ``error.status``;
request validation failures are an :class:`InvalidInput` listing each bad field; Starlette's
own HTTP errors (unknown route, wrong method) and unexpected exceptions get the same shape.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from califusion.core.errors import CaliFusionError, InvalidInput, NotFound

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem_response(error: CaliFusionError) -> ProblemResponse:
    return ProblemResponse(error.problem(), status_code=error.status)


def _field(loc: tuple[int | str, ...] | list[int | str]) -> str:
    return ".".join(str(part) for part in loc) or "(request)"


def validation_error(exc: RequestValidationError) -> InvalidInput:
    fields = {_field(err.get("loc", ())): str(err.get("msg", "invalid")) for err in exc.errors()}
    listing = "; ".join(f"{name}: {msg}" for name, msg in fields.items())
    return InvalidInput(f"request is not valid: {listing}", **fields)


def install_problem_handlers(app: FastAPI) -> None:
    async def on_califusion_error(_request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, CaliFusionError)
        if exc.status >= 500:
            log.error("request failed", extra={"code": exc.code, "detail": exc.message})
        return problem_response(exc)

    async def on_validation_error(_request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(validation_error(exc))

    async def on_http_error(request: Request, exc: Exception) -> ProblemResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == NotFound.status:
            error: CaliFusionError = NotFound(f"no such resource: {request.url.path}")
            return problem_response(error)
        code = f"http-{exc.status_code}"
        body = CaliFusionError(str(exc.detail)).problem() | {
            "type": f"https://califusion.dev/problems/{code}",
            "title": str(exc.detail),
            "status": exc.status_code,
            "code": code,
        }
        return ProblemResponse(body, status_code=exc.status_code, headers=exc.headers)

    async def on_unexpected(_request: Request, exc: Exception) -> ProblemResponse:
        log.exception("unexpected error", exc_info=exc)
        return problem_response(CaliFusionError("internal error; see the coordinator's log"))

    app.add_exception_handler(CaliFusionError, on_califusion_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
