"""Selling a trained model: the publisher offers it, and wraps its key to each paid buyer.

The final model is re-encrypted under a fresh **model key**, distinct from the job key: the
job key is held by every trainer and opens every round's model, the model key opens only the
model on offer, and a buyer holding it can do nothing else with the job. The model key is wrapped
(X25519 envelope) to each buyer's agreement key, under a context naming the job and the buyer,
so a wrapping cannot be passed to another identity.

Who paid is read from the escrow (the ledger's blocks: a purchase is the buyer's first transfer
of at least the price with the job's buy memo); a buyer who has not paid gets nothing, and a
second payment is refunded by the escrow, never kept. The key is wrapped only while this agent
runs (``grant_paid``): a publisher that stays offline delays delivery but cannot touch the
buyer's payment, which the escrow splits between publisher and trainers by the signed share.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from califusion.agent.publisher import PublisherAgent
from califusion.core.errors import InvalidInput, NotFound
from califusion.crypto import envelope, symmetric
from califusion.crypto.encoding import b64d, b64e
from califusion.crypto.envelope import context
from califusion.ledger.escrow_api import EscrowReader
from califusion.ml import to_safetensors
from califusion.protocol.access import AccessGrant, GrantAccess, ModelOffer


def model_sale_context(job_id: str) -> bytes:
    """The context of the final model sealed under the model key."""
    return context("model-for-sale", job=job_id)


def model_key_context(job_id: str, buyer: str) -> bytes:
    """The context of the model key wrapped to one buyer."""
    return context("model-key", job=job_id, recipient=buyer)


def _model_key_at_rest_context(job_id: str) -> bytes:
    return context("model-key-at-rest", job=job_id)


@dataclass
class ModelSeller:
    agent: PublisherAgent
    escrow: EscrowReader | None = None  # needed to grant: who paid is the escrow's fact

    def _key_path(self, job_id: str) -> Path:
        return self.agent.state_dir / "jobs" / job_id / "model-key.sealed"

    def model_key(self, job_id: str) -> bytes:
        """The job's model key, made (and kept sealed to this publisher) on first use."""
        path = self._key_path(job_id)
        identity = self.agent.client.identity
        if path.exists():
            return envelope.open_envelope(
                path.read_bytes(), identity, _model_key_at_rest_context(job_id)
            )
        key = symmetric.new_job_key()
        sealed = envelope.seal(
            key, identity.public().agreement_public, _model_key_at_rest_context(job_id)
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(sealed)
        os.replace(tmp, path)
        return key

    def offer(self, job_id: str) -> ModelOffer:
        """Offer a completed job's final model, sealed under the model key (idempotent)."""
        client = self.agent.client
        try:
            return client.model_offer(job_id)
        except NotFound:
            pass
        key = self.model_key(job_id)
        job, weights = self.agent.results(job_id)
        plain = to_safetensors(weights, {"job_id": job.job_id})
        sealed = symmetric.encrypt(key, plain, model_sale_context(job_id))
        return client.offer_model(job_id, client.put_blob(sealed).digest)

    def grant_paid(self, job_id: str) -> list[str]:
        """Wrap the model key to every buyer the escrow shows as paid and not yet served."""
        if self.escrow is None:
            raise InvalidInput("granting access needs the escrow: who paid is the ledger's fact")
        client = self.agent.client
        granted = {g.buyer for g in client.access_grants(job_id)}
        paid = [p.to_text() for p in self.escrow.status(job_id).purchases]
        grants: list[AccessGrant] = []
        key: bytes | None = None
        for buyer in sorted(set(paid) - granted):
            try:
                info = client.principal(buyer)
            except NotFound:
                continue  # not registered with the coordinator yet: next time
            key = key if key is not None else self.model_key(job_id)
            wrapped = envelope.wrap_key(
                key, b64d(info.agreement_public), model_key_context(job_id, buyer)
            )
            grants.append(AccessGrant(buyer=buyer, wrapped_key=b64e(wrapped)))
        if grants:
            client.grant_access(job_id, GrantAccess(grants=grants))
        return [g.buyer for g in grants]
