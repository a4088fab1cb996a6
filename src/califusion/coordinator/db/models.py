"""The coordinator's tables as a typed SQLAlchemy 2 ORM.

Times are Unix seconds (double precision), keys are raw bytes, blobs are referenced by digest,
and the job spec is stored as the JSON of :class:`~califusion.protocol.jobs.JobSpec`. The
schema is created by the Alembic migrations in ``coordinator/migrations``; a test checks that
they produce exactly these tables.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Double,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

PRINCIPAL = String(63)
DIGEST = String(64)
STATE = String(16)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class PrincipalRow(Base):
    __tablename__ = "principals"

    principal: Mapped[str] = mapped_column(PRINCIPAL, primary_key=True)
    signing_public: Mapped[bytes] = mapped_column(LargeBinary(32))
    agreement_public: Mapped[bytes] = mapped_column(LargeBinary(32))
    display_name: Mapped[str] = mapped_column(String(100))
    registered_at: Mapped[float] = mapped_column(Double)


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (Index(None, "state"), Index(None, "publisher"))

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    publisher: Mapped[str] = mapped_column(ForeignKey("principals.principal"))
    aggregator_agreement_public: Mapped[bytes] = mapped_column(LargeBinary(32))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    state: Mapped[str] = mapped_column(STATE)
    state_reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Double)
    current_round: Mapped[int] = mapped_column(Integer)
    rounds_completed: Mapped[int] = mapped_column(Integer)
    initial_model: Mapped[str] = mapped_column(DIGEST)
    final_model: Mapped[str | None] = mapped_column(DIGEST)
    # Bumped on every change of the job or its rounds: an optimistic-lock check on top of the
    # row lock, so two workers can never both apply the same transition.
    version: Mapped[int] = mapped_column(Integer)

    __mapper_args__ = {"version_id_col": version, "version_id_generator": False}  # noqa: RUF012


class MemberRow(Base):
    __tablename__ = "members"

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.job_id"), primary_key=True)
    trainer: Mapped[str] = mapped_column(ForeignKey("principals.principal"), primary_key=True)
    state: Mapped[str] = mapped_column(STATE)
    declared_samples: Mapped[int] = mapped_column(BigInteger)
    joined_at: Mapped[float] = mapped_column(Double)
    rounds_contributed: Mapped[int] = mapped_column(Integer)
    wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)


class RoundRow(Base):
    __tablename__ = "rounds"
    __table_args__ = (Index(None, "state", "deadline"),)

    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.job_id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(STATE)
    model: Mapped[str] = mapped_column(DIGEST)
    opened_at: Mapped[float] = mapped_column(Double)
    deadline: Mapped[float] = mapped_column(Double)
    result_model: Mapped[str | None] = mapped_column(DIGEST)
    contributors: Mapped[list[str]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class UpdateRow(Base):
    __tablename__ = "updates"
    __table_args__ = (
        ForeignKeyConstraint(
            ["job_id", "round_number"], ["rounds.job_id", "rounds.number"], name="fk_updates_round"
        ),
    )

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    round_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    trainer: Mapped[str] = mapped_column(ForeignKey("principals.principal"), primary_key=True)
    update_digest: Mapped[str] = mapped_column(DIGEST)
    submitted_at: Mapped[float] = mapped_column(Double)


class NonceRow(Base):
    __tablename__ = "nonces"
    __table_args__ = (Index(None, "expires_at"),)

    principal: Mapped[str] = mapped_column(PRINCIPAL, primary_key=True)
    nonce: Mapped[str] = mapped_column(String(128), primary_key=True)
    expires_at: Mapped[float] = mapped_column(Double)
