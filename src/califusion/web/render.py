"""Templates: one Jinja2 environment (autoescaped), its filters, and the context every page gets."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from califusion.web.config import DashboardConfig
from califusion.web.local import LocalAgent
from califusion.web.present import (
    account_text,
    amount,
    joined_count,
    schema_rows,
    short_hex,
    short_principal,
    timestamp,
    tokens,
)
from califusion.web.security import session_of

__all__ = ["STATIC_DIR", "TEMPLATES_DIR", "Renderer", "agent_of", "is_htmx", "renderer_of"]

TEMPLATES_DIR = Path(str(files("califusion.web") / "templates"))
STATIC_DIR = Path(str(files("califusion.web") / "static"))


class Renderer:
    """Renders a template with the page context: the user, the CSRF token, the nav."""

    def __init__(self, config: DashboardConfig) -> None:
        self.config = config
        self.templates = Jinja2Templates(directory=TEMPLATES_DIR)
        env = self.templates.env
        env.filters["amount"] = lambda units: amount(
            units, config.token_decimals, config.token_symbol
        )
        env.filters["short"] = short_principal
        env.filters["account"] = account_text
        env.filters["hexshort"] = short_hex
        env.filters["tokens"] = tokens
        env.filters["when"] = timestamp
        env.globals["joined_count"] = joined_count
        env.globals["schema_rows"] = schema_rows
        env.globals["symbol"] = config.token_symbol
        env.globals["live_refresh"] = f"every {config.live_refresh_s:g}s"

    def page(
        self, request: Request, name: str, *, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        agent = agent_of(request)
        session = session_of(request)
        base = {
            "me": agent.principal,
            "display_name": agent.config.display_name,
            "csrf": session.csrf_token,
            "coordinator": agent.config.coordinator_url,
            "registration_error": agent.registration_error,
            "nav_path": request.url.path,
        }
        return self.templates.TemplateResponse(
            request, name, {**base, **context}, status_code=status_code
        )


def agent_of(request: Request) -> LocalAgent:
    agent = request.app.state.agent
    assert isinstance(agent, LocalAgent)
    return agent


def renderer_of(request: Request) -> Renderer:
    renderer = request.app.state.renderer
    assert isinstance(renderer, Renderer)
    return renderer


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"
