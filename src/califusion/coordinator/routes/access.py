"""/v1/jobs/{job_id}/access: a completed job's model for sale, and buyers' keys."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from califusion.coordinator.deps import Caller, CoordinatorDep
from califusion.coordinator.routes.jobs import JobIdPath
from califusion.coordinator.services.access import AccessService
from califusion.protocol.access import AccessKey, GrantAccess, GrantInfo, ModelOffer, OfferModel

router = APIRouter(prefix="/v1/jobs", tags=["model access"])


def get_access(coordinator: CoordinatorDep) -> AccessService:
    return AccessService(
        coordinator.db,
        coordinator.clock,
        coordinator.blobs,
        max_wrapped_key_bytes=coordinator.settings.max_wrapped_key_bytes,
    )


Access = Annotated[AccessService, Depends(get_access)]


@router.post("/{job_id}/access/offer", response_model=ModelOffer)
def offer_model(
    caller: Caller, job_id: JobIdPath, payload: OfferModel, access: Access
) -> ModelOffer:
    """Publisher: offer a completed job's final model, sealed under its model key."""
    return access.offer(caller, job_id, payload)


@router.get("/{job_id}/access/offer", response_model=ModelOffer)
def get_offer(_caller: Caller, job_id: JobIdPath, access: Access) -> ModelOffer:
    return access.get_offer(job_id)


@router.post("/{job_id}/access/grants", response_model=list[GrantInfo])
def grant_access(
    caller: Caller, job_id: JobIdPath, payload: GrantAccess, access: Access
) -> list[GrantInfo]:
    """Publisher: the model key wrapped to buyers whose payment the ledger shows."""
    return access.grant(caller, job_id, payload)


@router.get("/{job_id}/access/grants", response_model=list[GrantInfo])
def list_grants(caller: Caller, job_id: JobIdPath, access: Access) -> list[GrantInfo]:
    return access.grants(caller, job_id)


@router.get("/{job_id}/access/key", response_model=AccessKey)
def get_access_key(caller: Caller, job_id: JobIdPath, access: Access) -> AccessKey:
    """Buyer: the model's digest and the model key wrapped to the caller."""
    return access.key(caller, job_id)
