"""Model access: the publisher's offer, its grants to buyers, and each buyer's wrapped key.

The coordinator relays; it decides nothing about money. Which buyers paid is the ledger's fact,
checked by the publisher's agent before it wraps the model key to a buyer; a buyer who has not
been granted gets ``PermissionDenied``. The offer is fixed once made (buyers' keys open exactly
that ciphertext); grants may be re-sent (the latest wrapping replaces the earlier one).
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from califusion.coordinator.db.access_models import ModelGrantRow, ModelOfferRow
from califusion.coordinator.db.engine import Database
from califusion.coordinator.db.repositories import JobRepository, PrincipalRepository
from califusion.coordinator.progress import load_job
from califusion.coordinator.services.jobs import require_publisher
from califusion.coordinator.views import job_spec
from califusion.core.clock import Clock
from califusion.core.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
)
from califusion.crypto.encoding import b64d, b64e
from califusion.protocol.access import AccessKey, GrantAccess, GrantInfo, ModelOffer, OfferModel
from califusion.protocol.jobs import JobState
from califusion.storage.blobs import BlobStore

log = logging.getLogger(__name__)


def _offer_of(session: Session, job_id: str) -> ModelOfferRow:
    offer = session.get(ModelOfferRow, job_id)
    if offer is None:
        raise NotFound(f"job {job_id} has no model on offer (yet)")
    return offer


def _offer_info(row: ModelOfferRow) -> ModelOffer:
    return ModelOffer(job_id=row.job_id, model=row.model, offered_at=row.offered_at)


class AccessService:
    def __init__(
        self, db: Database, clock: Clock, blobs: BlobStore, *, max_wrapped_key_bytes: int
    ) -> None:
        self._db = db
        self._clock = clock
        self._blobs = blobs
        self._max_wrapped_key_bytes = max_wrapped_key_bytes

    def offer(self, caller: str, job_id: str, request: OfferModel) -> ModelOffer:
        """Publisher: put a completed job's final model (under its model key) on offer."""
        now = self._clock.now()
        with self._db.transaction() as session:
            job = load_job(JobRepository(session), job_id, now)
            require_publisher(job, caller, "offer its model")
            if not self._blobs.exists(request.model):
                raise InvalidInput(
                    f"model blob {request.model} does not exist; upload it first (PUT /v1/blobs)",
                    model="blob not found",
                )
            if job.state != JobState.COMPLETED.value:
                raise Conflict(f"job {job_id} is {job.state}: only a completed job's model sells")
            if job_spec(job).price is None:
                raise Conflict(f"job {job_id} sets no price: its model is not for sale")
            existing = session.get(ModelOfferRow, job_id)
            if existing is not None:
                if existing.model != request.model:
                    raise Conflict(f"job {job_id} already offers model {existing.model}")
                return _offer_info(existing)
            row = ModelOfferRow(job_id=job_id, model=request.model, offered_at=now)
            session.add(row)
            log.info("model offered", extra={"job_id": job_id})
            return _offer_info(row)

    def get_offer(self, job_id: str) -> ModelOffer:
        with self._db.transaction() as session:
            return _offer_info(_offer_of(session, job_id))

    def grant(self, caller: str, job_id: str, request: GrantAccess) -> list[GrantInfo]:
        """Publisher: store the model key wrapped to each (paid) buyer."""
        buyers = [g.buyer for g in request.grants]
        if len(set(buyers)) != len(buyers):
            raise InvalidInput("a buyer appears more than once")
        keys = {g.buyer: b64d(g.wrapped_key) for g in request.grants}
        for buyer, key in keys.items():
            if not 0 < len(key) <= self._max_wrapped_key_bytes:
                raise PayloadTooLarge(
                    f"wrapped key for {buyer} is {len(key)} bytes; it must be 1 to "
                    f"{self._max_wrapped_key_bytes}"
                )
        now = self._clock.now()
        with self._db.transaction() as session:
            job = load_job(JobRepository(session), job_id, now, lock=False)
            require_publisher(job, caller, "grant access to its model")
            _offer_of(session, job_id)
            principals = PrincipalRepository(session)
            for buyer, key in keys.items():
                if principals.get(buyer) is None:
                    raise NotFound(f"buyer {buyer} is not registered")
                row = session.get(ModelGrantRow, (job_id, buyer))
                if row is None:
                    session.add(
                        ModelGrantRow(job_id=job_id, buyer=buyer, wrapped_key=key, granted_at=now)
                    )
                else:
                    row.wrapped_key, row.granted_at = key, now
            log.info("model access granted", extra={"job_id": job_id, "buyers": len(keys)})
        return self.grants(caller, job_id)

    def grants(self, caller: str, job_id: str) -> list[GrantInfo]:
        """Publisher: the buyers the model key was wrapped to."""
        with self._db.transaction() as session:
            job = load_job(JobRepository(session), job_id, self._clock.now(), lock=False)
            require_publisher(job, caller, "list its model's buyers")
            rows = session.scalars(
                select(ModelGrantRow)
                .where(ModelGrantRow.job_id == job_id)
                .order_by(ModelGrantRow.buyer)
            )
            return [GrantInfo(buyer=r.buyer, granted_at=r.granted_at) for r in rows]

    def key(self, caller: str, job_id: str) -> AccessKey:
        """Buyer: the model's digest and the model key wrapped to the caller."""
        with self._db.transaction() as session:
            offer = _offer_of(session, job_id)
            grant = session.get(ModelGrantRow, (job_id, caller))
            if grant is None:
                raise PermissionDenied(
                    f"{caller} has no access to the model of {job_id}: pay its price into the "
                    "job's escrow; the publisher's agent wraps the key once the ledger shows it"
                )
            return AccessKey(job_id=job_id, model=offer.model, wrapped_key=b64e(grant.wrapped_key))
