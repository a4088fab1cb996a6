"""/v1/principals: register keys, look a principal up."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from califusion.coordinator.deps import Body, Caller, Principals, SignedHeaders, signed_path
from califusion.protocol.jobs import PrincipalInfo, RegisterPrincipal

router = APIRouter(prefix="/v1/principals", tags=["principals"])


@router.post("", response_model=PrincipalInfo)
def register_principal(
    request: Request,
    _signed: SignedHeaders,
    payload: RegisterPrincipal,
    body: Body,
    principals: Principals,
) -> PrincipalInfo:
    """Register a signing and an agreement key. Signed by the signing key being registered;
    registering the same keys again is a no-op."""
    return principals.register(request.headers, request.method, signed_path(request), body, payload)


@router.get("/{principal}", response_model=PrincipalInfo)
def get_principal(
    _caller: Caller, principal: Annotated[str, Path(max_length=63)], principals: Principals
) -> PrincipalInfo:
    return principals.get(principal)
