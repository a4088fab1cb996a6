"""The dashboard application: routes, static files, error pages and the local guard, wired once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from califusion.core.errors import CaliFusionError
from califusion.crypto.identity import Identity
from califusion.web.config import DashboardConfig
from califusion.web.local import LocalAgent
from califusion.web.render import STATIC_DIR, Renderer, is_htmx
from califusion.web.routes import access, explorer, jobs, publisher, session, trainer, wallet
from califusion.web.security import LocalGuard, SessionStore, csrf_guard

__all__ = ["Dashboard", "create_app"]


def create_app(agent: LocalAgent, sessions: SessionStore) -> FastAPI:
    """The FastAPI app serving ``agent``'s dashboard, behind :class:`LocalGuard`."""
    config = agent.config

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        agent.start()
        try:
            yield
        finally:
            await run_in_threadpool(agent.stop)

    app = FastAPI(
        title="CaliFusion dashboard",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(csrf_guard)],
    )
    app.state.agent = agent
    app.state.sessions = sessions
    app.state.renderer = Renderer(config)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for module in (session, publisher, jobs, trainer, access, wallet, explorer):
        app.include_router(module.router)

    @app.exception_handler(CaliFusionError)
    async def _our_error(request: Request, exc: CaliFusionError) -> Response:
        return _error_page(request, exc.status, exc.title, str(exc))

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        return _error_page(request, exc.status_code, "Refused", str(exc.detail))

    app.add_middleware(
        LocalGuard,
        port=config.port,
        sessions=sessions,
        max_body_bytes=config.max_upload_bytes + 1024**2,
    )
    return app


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    """A page saying what went wrong; htmx requests get the message alone for the alert bar."""
    if is_htmx(request) or getattr(request.state, "session", None) is None:
        return PlainTextResponse(message, status_code=status)
    renderer = request.app.state.renderer
    assert isinstance(renderer, Renderer)
    return renderer.page(request, "error.html", status_code=status, title=title, message=message)


class Dashboard:
    """One user's dashboard: the agent with its keys, the session store and the app."""

    def __init__(self, identity: Identity, config: DashboardConfig) -> None:
        self.config = config
        self.sessions = SessionStore()
        self.agent = LocalAgent(identity, config)
        self.app = create_app(self.agent, self.sessions)

    @property
    def launch_url(self) -> str:
        """The URL to open: it carries the launch token, so treat it like a password."""
        return f"{self.config.origin}/login?token={self.sessions.launch_token}"
