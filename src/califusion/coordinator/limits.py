"""Request body limits, enforced before any route sees the body.

The middleware reads the whole body (the signature covers its hash anyway), refusing with 413
as soon as the declared ``Content-Length`` or the bytes actually received pass the limit: blob
uploads get ``max_blob_bytes``, everything else ``max_request_bytes``. The body is then replayed
to the app and kept in ``scope["califusion.body"]`` for the authentication dependency.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from califusion.coordinator.problems import problem_response
from califusion.core.errors import PayloadTooLarge

BODY_SCOPE_KEY = "califusion.body"
BLOB_UPLOAD = ("PUT", "/v1/blobs")


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_request_bytes: int, max_blob_bytes: int) -> None:
        self.app = app
        self.max_request_bytes = max_request_bytes
        self.max_blob_bytes = max_blob_bytes

    def _limit(self, scope: Scope) -> tuple[int, str]:
        if (scope["method"], scope["path"].rstrip("/")) == BLOB_UPLOAD:
            return self.max_blob_bytes, "blob"
        return self.max_request_bytes, "request body"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, what = self._limit(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, receive, send, f"{what} is {declared} bytes", limit)
            return
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > limit:
                await _refuse(scope, receive, send, f"{what} is over {limit} bytes", limit)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        scope[BODY_SCOPE_KEY] = body
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _refuse(scope: Scope, receive: Receive, send: Send, what: str, limit: int) -> None:
    error = PayloadTooLarge(f"{what}; the limit is {limit} bytes", limit=limit)
    await problem_response(error)(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
