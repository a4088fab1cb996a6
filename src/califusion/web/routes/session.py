"""Signing in with the launch token, and signing out."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from califusion.web.security import SessionStore, session_of

__all__ = ["router"]

router = APIRouter()


def _sessions(request: Request) -> SessionStore:
    store = request.app.state.sessions
    assert isinstance(store, SessionStore)
    return store


@router.get("/login", response_class=HTMLResponse)
def login(request: Request, token: str = "") -> Response:
    """Exchange the launch token for a session cookie, then drop the token from the URL."""
    opened = _sessions(request).login(token) if token else None
    if opened is None:
        return PlainTextResponse(
            "Not signed in: this link's token is missing or wrong. Open the exact link that "
            "`califusion ui` printed when it started.",
            status_code=401,
        )
    cookie, _ = opened
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        request.state.cookie_name,
        cookie,
        httponly=True,
        samesite="strict",
        path="/",
        secure=False,  # plain http on loopback; the cookie never leaves this machine
    )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    _sessions(request).logout(session_of(request))
    response = PlainTextResponse("Signed out. Open the launch link again to sign back in.")
    response.delete_cookie(request.state.cookie_name, path="/")
    return response
