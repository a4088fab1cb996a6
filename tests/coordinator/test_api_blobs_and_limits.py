"""Blobs over HTTP, body limits and the problem shape of framework errors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from starlette.types import Message, Receive, Scope, Send

from califusion.coordinator.limits import BODY_SCOPE_KEY, BodyLimitMiddleware
from califusion.crypto.identity import Identity

from .conftest import MAX_BLOB_BYTES, MAX_REQUEST_BYTES
from .harness import SignedClient
from .scenario import assert_problem


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: nothing here touches backend-specific SQL."""
    return f"sqlite:///{tmp_path / 'coordinator.db'}"


@pytest.fixture
def me(api: SignedClient, publisher: Identity) -> Identity:
    api.register(publisher)
    return publisher


def test_blob_round_trip(api: SignedClient, me: Identity) -> None:
    data = bytes(range(256)) * 100
    response = api.request(me, "PUT", "/v1/blobs", content=data)
    assert api.ok(response) == {"digest": hashlib.sha256(data).hexdigest(), "size": len(data)}
    again = api.ok(api.request(me, "PUT", "/v1/blobs", content=data))  # idempotent
    fetched = api.get(me, f"/v1/blobs/{again['digest']}")
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "application/octet-stream"
    assert fetched.content == data


def test_blob_errors(api: SignedClient, me: Identity) -> None:
    assert_problem(api.get(me, "/v1/blobs/" + "a" * 64), 404, "not-found")
    assert_problem(api.get(me, "/v1/blobs/" + "A" * 64), 422, "invalid-input")
    # %2F is decoded before routing: the path no longer matches a blob at all.
    assert_problem(api.get(me, "/v1/blobs/..%2F..%2Fetc%2Fpasswd"), 404, "not-found")


def test_blob_limit_is_413(api: SignedClient, me: Identity) -> None:
    api.ok(api.request(me, "PUT", "/v1/blobs", content=bytes(MAX_BLOB_BYTES)))
    response = api.request(me, "PUT", "/v1/blobs", content=bytes(MAX_BLOB_BYTES + 1))
    problem = assert_problem(response, 413, "payload-too-large")
    assert problem["errors"] == {"limit": MAX_BLOB_BYTES}
    assert "blob" in problem["detail"]


def test_json_bodies_have_the_smaller_limit(api: SignedClient, me: Identity) -> None:
    padding = "x" * MAX_REQUEST_BYTES
    response = api.post(me, "/v1/jobs/job-" + "0" * 32 + "/join", {"declared_samples": padding})
    problem = assert_problem(response, 413, "payload-too-large")
    assert problem["errors"] == {"limit": MAX_REQUEST_BYTES}


def test_framework_errors_are_problems(api: SignedClient, me: Identity) -> None:
    assert_problem(api.get(me, "/v1/nothing-here"), 404, "not-found")
    assert_problem(api.request(me, "DELETE", "/v1/jobs"), 405, "http-405")
    malformed_id = api.get(me, "/v1/jobs/not-a-job-id")
    problem = assert_problem(malformed_id, 422, "invalid-input")
    assert "path.job_id" in problem["errors"]


# ---- the middleware on its own: bodies without Content-Length ----------------------------------


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    message = await receive()
    body = message["body"]
    assert scope[BODY_SCOPE_KEY] == body
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def _call(chunks: list[bytes], headers: list[tuple[bytes, bytes]]) -> list[Message]:
    middleware = BodyLimitMiddleware(_echo, max_request_bytes=10, max_blob_bytes=100)
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/v1/x", "headers": headers}
    pending = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return pending.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware(scope, receive, send)
    return sent


@pytest.mark.anyio
async def test_streamed_body_over_the_limit_is_refused() -> None:
    sent = await _call([b"12345", b"67890", b"X"], [])
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["code"] == "payload-too-large"


@pytest.mark.anyio
async def test_streamed_body_within_the_limit_is_replayed() -> None:
    sent = await _call([b"12345", b"67890"], [])
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b"1234567890"


@pytest.mark.anyio
async def test_declared_length_over_the_limit_is_refused_unread() -> None:
    sent = await _call([b"small"], [(b"content-length", b"11")])
    assert sent[0]["status"] == 413


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
