"""What routes receive through ``Depends``: the wired coordinator, the body, the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from califusion.coordinator.db.engine import Database
from califusion.coordinator.limits import BODY_SCOPE_KEY
from califusion.coordinator.services import JobService, PrincipalService, RoundService
from califusion.coordinator.services.secagg import SecAggService
from califusion.core.clock import Clock
from califusion.core.settings import CoordinatorSettings
from califusion.crypto.signing import SignedRequest, parse_signed_headers
from califusion.storage.blobs import BlobStore


@dataclass(frozen=True, slots=True)
class Coordinator:
    """Everything one app instance is wired with; built once by ``create_app``."""

    settings: CoordinatorSettings
    clock: Clock
    db: Database
    blobs: BlobStore
    principals: PrincipalService
    jobs: JobService
    rounds: RoundService
    secagg: SecAggService


def get_coordinator(request: Request) -> Coordinator:
    coordinator = request.app.state.coordinator
    assert isinstance(coordinator, Coordinator)
    return coordinator


CoordinatorDep = Annotated[Coordinator, Depends(get_coordinator)]


def raw_body(request: Request) -> bytes:
    """The request body exactly as received (read once by ``BodyLimitMiddleware``)."""
    body = request.scope.get(BODY_SCOPE_KEY, b"")
    assert isinstance(body, bytes)
    return body


def signed_path(request: Request) -> str:
    """The path as the client signed it: the raw request-line path and its query string."""
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    path = bytes(raw).decode("latin-1")
    query = bytes(request.scope.get("query_string", b"")).decode("latin-1")
    return f"{path}?{query}" if query else path


def get_caller(request: Request, coordinator: CoordinatorDep) -> str:
    """The registered principal that signed this request (AuthenticationError otherwise)."""
    return coordinator.principals.authenticate(
        request.headers, request.method, signed_path(request), raw_body(request)
    )


def require_signed_headers(request: Request) -> SignedRequest:
    """Refuse a request without well-formed signature headers before its body is looked at."""
    return parse_signed_headers(request.headers)


def get_principals(coordinator: CoordinatorDep) -> PrincipalService:
    return coordinator.principals


def get_jobs(coordinator: CoordinatorDep) -> JobService:
    return coordinator.jobs


def get_rounds(coordinator: CoordinatorDep) -> RoundService:
    return coordinator.rounds


def get_blobs(coordinator: CoordinatorDep) -> BlobStore:
    return coordinator.blobs


def get_secagg(coordinator: CoordinatorDep) -> SecAggService:
    return coordinator.secagg


Caller = Annotated[str, Depends(get_caller)]
SignedHeaders = Annotated[SignedRequest, Depends(require_signed_headers)]
Body = Annotated[bytes, Depends(raw_body)]
Principals = Annotated[PrincipalService, Depends(get_principals)]
Jobs = Annotated[JobService, Depends(get_jobs)]
Rounds = Annotated[RoundService, Depends(get_rounds)]
Blobs = Annotated[BlobStore, Depends(get_blobs)]
SecAgg = Annotated[SecAggService, Depends(get_secagg)]
