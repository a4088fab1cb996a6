"""How the local dashboard protects itself from everything that is not its own user's browser.

The dashboard binds 127.0.0.1 only, but a loopback port is reachable by every web page the user
visits (a page can POST to ``http://127.0.0.1:PORT``), by DNS-rebound host names, and by other
local programs. So every request passes these checks, in this order, before any route runs:

1. **Host** must be ``127.0.0.1:PORT`` or ``localhost:PORT`` (DNS rebinding: a rebound name
   arrives with the attacker's host name). Otherwise 400.
2. **Origin**: a request that names an ``Origin`` must name ours, and a browser's
   ``Sec-Fetch-Site`` must be ``same-origin`` (or ``none``: the user typed the URL or opened it
   from a terminal). Cookies do not isolate ports, and SameSite treats every 127.0.0.1 port as
   the same *site*, so a page served from another local port is refused here. Otherwise 403.
3. **State-changing methods** (anything but GET, HEAD, OPTIONS) must carry our ``Origin``, or
   with none a ``Referer`` on our origin. Otherwise 403.
4. **Session**: every path except ``/login`` and ``/static/`` needs the session cookie. The
   launch URL printed by ``califusion ui`` carries a random token; ``/login`` compares it with
   :func:`hmac.compare_digest` and exchanges it for an HttpOnly, SameSite=Strict cookie named
   after the port. Otherwise 401.
5. **CSRF** (in :func:`csrf_guard`, an app-wide dependency so no route can forget it): every
   state-changing request carries the session's synchronizer token in the ``X-CSRF-Token``
   header (htmx sends it from ``hx-headers``) or the ``csrf_token`` form field. Otherwise 403.

Every response carries a Content-Security-Policy without inline script or style, and
``X-Frame-Options: DENY``. The referrer policy is ``same-origin``, not ``no-referrer``: with
``no-referrer`` Chromium sends ``Origin: null`` on same-origin form posts, which would defeat
check 3; ``same-origin`` still sends nothing to any other origin.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SECURITY_HEADERS",
    "LocalGuard",
    "Session",
    "SessionStore",
    "csrf_guard",
    "session_of",
]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PUBLIC_PREFIXES = ("/static/",)
PUBLIC_PATHS = frozenset({"/login", "/favicon.ico"})

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS: dict[str, str] = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "cache-control": "no-store",
}


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True)
class Session:
    """One browser's login: the cookie value is never stored, only its SHA-256."""

    cookie_digest: bytes
    csrf_token: str
    created_at: float


@dataclass
class SessionStore:
    """The launch token and the sessions it opened (in memory: a restart logs everyone out)."""

    launch_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    max_sessions: int = 16
    max_age_s: float = 7 * 24 * 3600
    _sessions: dict[bytes, Session] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def login(self, token: str) -> tuple[str, Session] | None:
        """A new session (cookie value, session) if ``token`` is the launch token."""
        if not hmac.compare_digest(_digest(token), _digest(self.launch_token)):
            return None
        cookie = secrets.token_urlsafe(32)
        session = Session(_digest(cookie), secrets.token_urlsafe(32), time.time())
        with self._lock:
            if len(self._sessions) >= self.max_sessions:
                oldest = min(self._sessions.values(), key=lambda s: s.created_at)
                del self._sessions[oldest.cookie_digest]
            self._sessions[session.cookie_digest] = session
        return cookie, session

    def lookup(self, cookie: str | None) -> Session | None:
        """The live session of a cookie value, or None."""
        if not cookie:
            return None
        with self._lock:
            session = self._sessions.get(_digest(cookie))
            if session is not None and time.time() - session.created_at > self.max_age_s:
                del self._sessions[session.cookie_digest]
                return None
        return session

    def logout(self, session: Session) -> None:
        with self._lock:
            self._sessions.pop(session.cookie_digest, None)


class LocalGuard:
    """ASGI middleware applying the Host, Origin, method and session checks; adds headers."""

    def __init__(
        self, app: ASGIApp, *, port: int, sessions: SessionStore, max_body_bytes: int
    ) -> None:
        self.app = app
        self.sessions = sessions
        self.cookie_name = f"califusion_session_{port}"
        self.hosts = frozenset({f"127.0.0.1:{port}", f"localhost:{port}"})
        self.origins = frozenset(f"http://{host}" for host in self.hosts)
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets here
            return
        headers = _headers(scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            status, message = refusal
            await _plain(send, status, message)
            return
        cookie = SimpleCookie()
        cookie.load(headers.get("cookie", ""))
        morsel = cookie.get(self.cookie_name)
        session = self.sessions.lookup(morsel.value if morsel else None)
        path = scope["path"]
        if session is None and path not in PUBLIC_PATHS and not path.startswith(PUBLIC_PREFIXES):
            await _plain(
                send,
                401,
                "Not signed in. Open the link that `califusion ui` printed "
                "(http://127.0.0.1:PORT/login?token=...).",
            )
            return
        scope.setdefault("state", {})["session"] = session
        scope["state"]["cookie_name"] = self.cookie_name

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw = list(message.get("headers", []))
                present = {name.lower() for name, _ in raw}
                for name, value in SECURITY_HEADERS.items():
                    if name.encode() not in present:
                        raw.append((name.encode(), value.encode()))
                message["headers"] = raw
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str] | None:
        if headers.get("host", "") not in self.hosts:
            return 400, "Unexpected Host header: open the dashboard at 127.0.0.1 or localhost."
        origin = headers.get("origin")
        if origin is not None and origin not in self.origins:
            return 403, "Cross-origin request refused."
        fetch_site = headers.get("sec-fetch-site")
        if fetch_site is not None and fetch_site not in {"same-origin", "none"}:
            return 403, "Cross-site request refused."
        if scope["method"] not in SAFE_METHODS:
            referer = headers.get("referer", "")
            referer_origin = "{0.scheme}://{0.netloc}".format(urlsplit(referer)) if referer else ""
            if origin is None and referer_origin not in self.origins:
                return 403, "A state-changing request must come from the dashboard's own pages."
            length = headers.get("content-length", "0")
            if not length.isdigit() or int(length) > self.max_body_bytes:
                return 413, f"Request body over {self.max_body_bytes} bytes."
        return None


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in scope.get("headers", []):
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        joiner = "; " if key == "cookie" else ", "
        out[key] = text if key not in out else out[key] + joiner + text
    return out


async def _plain(send: Send, status: int, message: str) -> None:
    body = message.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    headers += [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def session_of(request: Request) -> Session:
    """The request's session (the guard has already refused requests without one)."""
    session = getattr(request.state, "session", None)
    if not isinstance(session, Session):
        raise HTTPException(401, "not signed in")
    return session


async def csrf_guard(request: Request) -> None:
    """App-wide dependency: a state-changing request must carry the session's CSRF token."""
    if request.method in SAFE_METHODS:
        return
    session = getattr(request.state, "session", None)
    if not isinstance(session, Session):
        raise HTTPException(401, "not signed in")
    token = request.headers.get(CSRF_HEADER)
    if token is None:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            value = (await request.form()).get(CSRF_FIELD)
            token = value if isinstance(value, str) else None
    if token is None or not hmac.compare_digest(_digest(token), _digest(session.csrf_token)):
        raise HTTPException(403, "missing or wrong CSRF token: reload the page and try again")
