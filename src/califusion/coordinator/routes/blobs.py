"""/v1/blobs: content-addressed ciphertext (models, updates)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from califusion.coordinator.deps import Blobs, Body, Caller
from califusion.protocol.jobs import BlobRef

router = APIRouter(prefix="/v1/blobs", tags=["blobs"])

DigestPath = Annotated[str, Path(pattern=r"^[0-9a-f]{64}$", description="SHA-256 hex")]


@router.put(
    "",
    response_model=BlobRef,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string"}}},
        }
    },
)
def put_blob(_caller: Caller, body: Body, blobs: Blobs) -> BlobRef:
    """Store the raw request body; its name is its SHA-256. Idempotent."""
    digest = blobs.put(body)
    return BlobRef(digest=digest, size=len(body))


@router.get(
    "/{digest}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_blob(_caller: Caller, digest: DigestPath, blobs: Blobs) -> Response:
    return Response(content=blobs.get(digest), media_type="application/octet-stream")
