"""Tables of model access: a job's offer and the model keys wrapped to buyers.

The offer names the final model sealed under the publisher's *model key*; a grant is that key
wrapped to one buyer's agreement key. Neither is secret to the coordinator: it cannot open the
model without a key, nor a wrapped key without the buyer's private key. Whether a buyer paid is
the ledger's business, checked by the publisher's agent before it wraps.
"""

from __future__ import annotations

from sqlalchemy import Double, ForeignKey, LargeBinary
from sqlalchemy.orm import Mapped, mapped_column

from califusion.coordinator.db.models import DIGEST, Base


class ModelOfferRow(Base):
    __tablename__ = "model_offers"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.job_id"), primary_key=True)
    model: Mapped[str] = mapped_column(DIGEST)
    offered_at: Mapped[float] = mapped_column(Double)


class ModelGrantRow(Base):
    __tablename__ = "model_grants"

    job_id: Mapped[str] = mapped_column(ForeignKey("model_offers.job_id"), primary_key=True)
    buyer: Mapped[str] = mapped_column(ForeignKey("principals.principal"), primary_key=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    granted_at: Mapped[float] = mapped_column(Double)
