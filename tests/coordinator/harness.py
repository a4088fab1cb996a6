"""Driving a real coordinator app from synchronous tests, with really signed requests.

Starlette's TestClient warns (it wants ``httpx2``), so this is the same idea in a few lines: an
event loop in a background thread (an anyio blocking portal) runs the app's lifespan and an
``httpx.AsyncClient`` over ``ASGITransport``; each call blocks until its response is back.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from functools import partial
from typing import Any

import httpx
from anyio.from_thread import start_blocking_portal
from fastapi import FastAPI
from sqlalchemy import select

from califusion.coordinator.db import Database, JobRow, MemberRow, RoundRow, UpdateRow
from califusion.core.clock import FakeClock
from califusion.crypto.encoding import b64e
from califusion.crypto.identity import Identity
from califusion.crypto.signing import sign_request

BASE_URL = "http://coordinator.test"


class SignedClient:
    """Sends requests signed by a given identity at the fake clock's time."""

    def __init__(self, http: _PortalClient, clock: FakeClock) -> None:
        self.http = http
        self.clock = clock

    def request(
        self,
        identity: Identity | None,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        nonce: str | None = None,
        signed_at: float | None = None,
    ) -> httpx.Response:
        """``path`` is sent and signed exactly as given (put a query string in it)."""
        extra: dict[str, str] = {}
        if json_body is not None:
            content = json.dumps(json_body).encode()
            extra["content-type"] = "application/json"
        body = content if content is not None else b""
        if identity is not None:
            when = self.clock.now() if signed_at is None else signed_at
            extra |= sign_request(identity, method, path, body, when, nonce=nonce)
        extra |= headers or {}
        return self.http.request(method, path, content=body, headers=extra)

    def get(self, identity: Identity | None, path: str) -> httpx.Response:
        return self.request(identity, "GET", path)

    def post(self, identity: Identity, path: str, json_body: Any = None) -> httpx.Response:
        return self.request(identity, "POST", path, json_body=json_body)

    # ---- conveniences that assert success -------------------------------------------------

    def ok(self, response: httpx.Response) -> Any:
        assert response.is_success, f"{response.status_code}: {response.text}"
        return response.json()

    def register(self, identity: Identity, display_name: str = "") -> dict[str, Any]:
        public = identity.public()
        body = {
            "signing_public": b64e(public.signing_public),
            "agreement_public": b64e(public.agreement_public),
            "display_name": display_name,
        }
        result: dict[str, Any] = self.ok(self.post(identity, "/v1/principals", body))
        return result

    def put_blob(self, identity: Identity, data: bytes) -> str:
        response = self.request(
            identity,
            "PUT",
            "/v1/blobs",
            content=data,
            headers={"content-type": "application/octet-stream"},
        )
        digest: str = self.ok(response)["digest"]
        return digest


class _PortalClient:
    def __init__(self, portal: Any, client: httpx.AsyncClient) -> None:
        self._portal = portal
        self._client = client

    def request(
        self, method: str, path: str, *, content: bytes, headers: dict[str, str]
    ) -> httpx.Response:
        call = partial(self._client.request, method, path, content=content, headers=headers)
        response: httpx.Response = self._portal.call(call)
        return response


@contextlib.contextmanager
def running(app: FastAPI, clock: FakeClock) -> Iterator[SignedClient]:
    """The app with its lifespan started (migrations, ticker), and a client for it."""
    with start_blocking_portal() as portal:
        lifespan = app.router.lifespan_context(app)
        portal.call(lifespan.__aenter__)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL)
        try:
            yield SignedClient(_PortalClient(portal, client), clock)
        finally:
            portal.call(client.aclose)
            portal.call(lifespan.__aexit__, None, None, None)


def stored_state(db: Database, job_id: str) -> dict[str, list[dict[str, Any]]]:
    """Every stored row of a job (job, members, rounds, updates), read straight from the
    database: what a rejected request must leave exactly as it was."""
    state: dict[str, list[dict[str, Any]]] = {}
    with db.transaction() as session:
        for name, table in (
            ("jobs", JobRow.__table__),
            ("members", MemberRow.__table__),
            ("rounds", RoundRow.__table__),
            ("updates", UpdateRow.__table__),
        ):
            query = select(table).where(table.c.job_id == job_id)
            rows = session.execute(query).mappings().all()
            state[name] = sorted((dict(row) for row in rows), key=repr)
    return state
