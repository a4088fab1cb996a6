"""Model access: the shapes of ``/v1/jobs/{job_id}/access``.

The publisher's agent offers the final model sealed under a fresh *model key* (never the job key
the trainers hold) and wraps that key to each buyer whose payment the ledger shows; the
coordinator only stores the offer and the wrapped keys, which nobody but each buyer can open.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from califusion.protocol.jobs import B64, Digest, JobId, PrincipalText


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OfferModel(_Strict):
    model: Digest = Field(description="blob: the final model sealed under the model key")


class ModelOffer(_Strict):
    job_id: JobId
    model: Digest
    offered_at: float


class AccessGrant(_Strict):
    buyer: PrincipalText
    wrapped_key: B64 = Field(description="model key sealed to the buyer's agreement key")


class GrantAccess(_Strict):
    grants: list[AccessGrant] = Field(min_length=1, max_length=10_000)


class GrantInfo(_Strict):
    buyer: PrincipalText
    granted_at: float


class AccessKey(_Strict):
    """What a buyer fetches: the sealed model's digest and the model key wrapped to it."""

    job_id: JobId
    model: Digest
    wrapped_key: B64
