"""Tables of secure aggregation: one session per round attempt, and its event log.

The coordinator keeps no secure-aggregation state that it could not rebuild: a session row
holds the round's public parameters and a summary (stage, deadline, result), and
``secagg_events`` holds, in order, every input the session's server accepted — the client
messages as the bytes they were signed and sent in, and the deadlines that closed a stage.
Replaying the events through the pure server state machine rebuilds it exactly
(``fl.secagg.replay``), after a restart or in another worker. Masked vectors stay in the blob
store; their events name them by digest.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Double,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from califusion.coordinator.db.models import DIGEST, STATE, Base


class SecAggSessionRow(Base):
    __tablename__ = "secagg_sessions"
    __table_args__ = (
        ForeignKeyConstraint(
            ["job_id", "round_number"],
            ["rounds.job_id", "rounds.number"],
            name="fk_secagg_sessions_round",
        ),
        Index(None, "stage", "deadline"),
    )

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    round_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    mode: Mapped[str] = mapped_column(STATE)
    round_id: Mapped[bytes] = mapped_column(LargeBinary(16))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    start: Mapped[float] = mapped_column(Double)
    # [{"principal", "signing_public" (hex), "declared_samples"}], client id = position
    participants: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    stage: Mapped[str] = mapped_column(STATE)
    deadline: Mapped[float] = mapped_column(Double)
    events: Mapped[int] = mapped_column(Integer)
    result_digest: Mapped[str | None] = mapped_column(DIGEST)
    contributors: Mapped[list[int]] = mapped_column(JSON)
    dropped: Mapped[list[int]] = mapped_column(JSON)
    abort_reason: Mapped[str] = mapped_column(Text)
    transcript: Mapped[str | None] = mapped_column(Text)
    transcript_signature: Mapped[bytes | None] = mapped_column(LargeBinary(64))
    created_at: Mapped[float] = mapped_column(Double)


class SecAggEventRow(Base):
    __tablename__ = "secagg_events"
    __table_args__ = (
        ForeignKeyConstraint(
            ["job_id", "round_number", "attempt"],
            [
                "secagg_sessions.job_id",
                "secagg_sessions.round_number",
                "secagg_sessions.attempt",
            ],
            name="fk_secagg_events_session",
        ),
    )

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    round_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[float] = mapped_column(Double)
    kind: Mapped[str] = mapped_column(STATE)
    sender: Mapped[int | None] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    blob: Mapped[str | None] = mapped_column(DIGEST)
