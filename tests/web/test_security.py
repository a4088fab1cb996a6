"""The local guard, request by request: session, Host, Origin, CSRF and the security headers.

The dashboard app runs in a real uvicorn server on a loopback port, behind the same middleware
as in `califusion ui` (its background agent is not started). The coordinator it points at is
never contacted: every request here is either refused before a route runs or reaches a route
that needs no coordinator (the create-job form and its validation, sign-out).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from califusion.cli.localserver import free_port
from califusion.cli.localserver import serving as serve_app
from califusion.cli.ui import _listen
from califusion.crypto.identity import Identity
from califusion.web import Dashboard, DashboardConfig


@dataclass
class Served:
    dashboard: Dashboard
    port: int
    clients: list[httpx.Client] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cookie(self) -> str:
        return f"califusion_session_{self.port}"

    def client(self) -> httpx.Client:
        """A new HTTP client (closed with the server)."""
        client = httpx.Client(base_url=self.origin, timeout=10.0)
        self.clients.append(client)
        return client


@contextmanager
def serving(state_dir: Path) -> Iterator[Served]:
    """A dashboard served on a free loopback port (no background agent)."""
    port = free_port()
    config = DashboardConfig(
        coordinator_url="http://127.0.0.1:9", state_dir=state_dir, port=port, max_upload_bytes=4096
    )
    dashboard = Dashboard(Identity.generate(), config)
    served = Served(dashboard, port)
    try:
        with serve_app(dashboard.app, port=port, lifespan="off", name="dashboard"):
            try:
                yield served
            finally:
                for client in served.clients:
                    client.close()
    finally:
        dashboard.agent.stop()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serving(tmp_path) as one:
        yield one


def _signed_in(served: Served) -> tuple[httpx.Client, str]:
    """A client with a session cookie, and that session's CSRF token."""
    client = served.client()
    response = client.get(f"/login?token={served.dashboard.sessions.launch_token}")
    assert response.status_code == 303
    page = client.get("/jobs/new")
    assert page.status_code == 200
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match is not None
    return client, match.group(1)


def test_every_page_needs_a_session(served: Served) -> None:
    client = served.client()
    for path in ("/", "/trainer", "/jobs/new", f"/jobs/job-{'0' * 32}/model.safetensors"):
        response = client.get(path)
        assert response.status_code == 401, path
        assert "califusion ui" in response.text
    refused = client.post("/jobs", data={"title": "x"}, headers={"origin": served.origin})
    assert refused.status_code == 401


def test_a_wrong_or_missing_launch_token_opens_no_session(served: Served) -> None:
    client = served.client()
    for url in ("/login", "/login?token=", "/login?token=guess"):
        response = client.get(url)
        assert response.status_code == 401
        assert "set-cookie" not in response.headers
    token = served.dashboard.sessions.launch_token
    almost = token[:-1] + ("B" if token[-1] == "A" else "A")
    assert client.get(f"/login?token={almost}").status_code == 401
    assert client.get("/").status_code == 401


def test_login_sets_a_strict_http_only_cookie_and_drops_the_token(served: Served) -> None:
    client = served.client()
    response = client.get(f"/login?token={served.dashboard.sessions.launch_token}")
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{served.cookie}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/" in cookie
    assert served.dashboard.sessions.launch_token not in cookie
    assert client.get("/jobs/new").status_code == 200


def test_static_assets_are_served_without_a_session(served: Served) -> None:
    client = served.client()
    for path in (
        "/static/vendor/htmx.min.js",
        "/static/vendor/uPlot.iife.min.js",
        "/static/app.js",
    ):
        response = client.get(path)
        assert response.status_code == 200, path


def test_security_headers_on_every_response(served: Served) -> None:
    client, _ = _signed_in(served)
    responses = [
        client.get("/jobs/new"),  # 200
        served.client().get("/"),  # 401
        client.post("/logout", headers={"origin": "http://evil.example"}),  # 403
        client.get("/static/app.css"),
    ]
    for response in responses:
        csp = response.headers["content-security-policy"]
        assert "default-src 'self'" in csp
        assert "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "same-origin"


def test_an_unexpected_host_is_refused_dns_rebinding(served: Served) -> None:
    client, _ = _signed_in(served)
    rebound = client.get("/jobs/new", headers={"host": f"attacker.example:{served.port}"})
    assert rebound.status_code == 400
    assert (
        client.get("/jobs/new", headers={"host": f"127.0.0.1:{served.port + 1}"}).status_code == 400
    )
    assert client.get("/jobs/new", headers={"host": f"localhost:{served.port}"}).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": "http://evil.example"},
        {"origin": "http://127.0.0.1:{other}"},  # another local port: same site, not same origin
        {"origin": "null"},
        {"origin": "{origin}", "sec-fetch-site": "same-site"},
        {"origin": "{origin}", "sec-fetch-site": "cross-site"},
        {},  # neither Origin nor Referer
        {"referer": "http://127.0.0.1:{other}/page"},
    ],
)
def test_a_post_from_anywhere_but_our_own_pages_is_refused(
    served: Served, headers: dict[str, str]
) -> None:
    headers = {k: v.format(origin=served.origin, other=served.port + 1) for k, v in headers.items()}
    client, csrf = _signed_in(served)
    response = client.post("/logout", data={"csrf_token": csrf}, headers=headers)
    assert response.status_code == 403
    assert client.get("/jobs/new").status_code == 200  # still signed in: nothing happened


def test_a_cross_site_navigation_is_refused(served: Served) -> None:
    client, _ = _signed_in(served)
    assert client.get("/jobs/new", headers={"sec-fetch-site": "cross-site"}).status_code == 403
    assert client.get("/jobs/new", headers={"sec-fetch-site": "same-site"}).status_code == 403
    assert client.get("/jobs/new", headers={"sec-fetch-site": "none"}).status_code == 200


def test_a_post_without_the_csrf_token_is_refused(served: Served) -> None:
    client, _ = _signed_in(served)
    _, other_csrf = _signed_in(served)
    same_origin = {"origin": served.origin}
    attempts = [
        client.post("/logout", headers=same_origin),
        client.post("/logout", data={"csrf_token": "guess"}, headers=same_origin),
        client.post("/logout", data={"csrf_token": other_csrf}, headers=same_origin),
        client.post("/logout", headers={**same_origin, "x-csrf-token": ""}),
        client.post("/jobs", data={"title": "no token"}, headers=same_origin),
    ]
    for response in attempts:
        assert response.status_code == 403
        assert "CSRF" in response.text
    assert client.get("/jobs/new").status_code == 200


def test_the_right_token_passes_as_a_field_or_a_header(served: Served) -> None:
    client, csrf = _signed_in(served)
    form = client.post(
        "/jobs", data={"csrf_token": csrf, "title": ""}, headers={"origin": served.origin}
    )
    assert form.status_code == 422  # reached the route: the form's own validation answers
    assert "give the job a title" in form.text
    by_referer = client.post(
        "/jobs", data={"csrf_token": csrf}, headers={"referer": f"{served.origin}/jobs/new"}
    )
    assert by_referer.status_code == 422
    out = client.post("/logout", headers={"origin": served.origin, "x-csrf-token": csrf})
    assert out.status_code == 200
    assert client.get("/jobs/new").status_code == 401  # the session is gone


def test_an_oversized_body_is_refused_before_it_is_read(served: Served) -> None:
    client, csrf = _signed_in(served)
    big = {"csrf_token": csrf, "description": "x" * (2 * 1024**2)}
    response = client.post("/jobs", data=big, headers={"origin": served.origin})
    assert response.status_code == 413


def test_sessions_are_per_dashboard_port(served: Served, tmp_path: Path) -> None:
    """Cookies do not isolate ports: another dashboard must not accept this one's session."""
    client, _ = _signed_in(served)
    cookie = client.cookies.get(served.cookie)
    assert cookie is not None
    with serving(tmp_path / "other") as other:
        stranger = other.client()
        stranger.cookies.set(other.cookie, cookie)
        stranger.cookies.set(served.cookie, cookie)
        assert stranger.get("/jobs/new").status_code == 401


def test_the_real_server_binds_loopback_only() -> None:
    """`califusion ui` listens on 127.0.0.1: its socket helper refuses nothing else."""
    sock = _listen(0)
    try:
        host, port = sock.getsockname()
        assert host == "127.0.0.1"
        assert port > 0
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.2:{port}/", timeout=1.0)
    finally:
        sock.close()
