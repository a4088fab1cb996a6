"""SQL for secure-aggregation sessions and their event logs (inside the caller's transaction)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from califusion.coordinator.db.models import JobRow
from califusion.coordinator.db.repositories import unique
from califusion.coordinator.db.secagg_models import SecAggEventRow, SecAggSessionRow

ACTIVE_STAGES = ("advertise-keys", "share-keys", "masked-input", "consistency", "unmask")
SessionKey = tuple[str, int, int]


class SecAggRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, key: SessionKey) -> SecAggSessionRow | None:
        return self.session.get(SecAggSessionRow, key)

    def add(self, row: SecAggSessionRow) -> None:
        with unique(f"round {row.round_number} attempt {row.attempt} already has a session"):
            self.session.add(row)
            self.session.flush()

    def latest(self, job_id: str, number: int) -> SecAggSessionRow | None:
        """The session of the round's highest attempt."""
        query = (
            select(SecAggSessionRow)
            .where(SecAggSessionRow.job_id == job_id, SecAggSessionRow.round_number == number)
            .order_by(SecAggSessionRow.attempt.desc())
            .limit(1)
        )
        return self.session.scalars(query).one_or_none()

    def events(self, key: SessionKey, after: int = 0) -> Sequence[SecAggEventRow]:
        job_id, number, attempt = key
        query = (
            select(SecAggEventRow)
            .where(
                SecAggEventRow.job_id == job_id,
                SecAggEventRow.round_number == number,
                SecAggEventRow.attempt == attempt,
                SecAggEventRow.seq > after,
            )
            .order_by(SecAggEventRow.seq)
        )
        return self.session.scalars(query).all()

    def count_events(self, key: SessionKey) -> int:
        job_id, number, attempt = key
        query = select(func.count()).where(
            SecAggEventRow.job_id == job_id,
            SecAggEventRow.round_number == number,
            SecAggEventRow.attempt == attempt,
        )
        return self.session.scalar(query) or 0

    def add_event(self, row: SecAggEventRow) -> None:
        with unique(f"event {row.seq} of a secure-aggregation session already exists"):
            self.session.add(row)
            self.session.flush()

    def due(self, now: float) -> Sequence[tuple[str, int, int]]:
        """Active sessions of training jobs whose stage deadline has passed."""
        query = (
            select(SecAggSessionRow.job_id, SecAggSessionRow.round_number, SecAggSessionRow.attempt)
            .join(JobRow, JobRow.job_id == SecAggSessionRow.job_id)
            .where(
                SecAggSessionRow.stage.in_(ACTIVE_STAGES),
                SecAggSessionRow.deadline <= now,
                JobRow.state == "training",
            )
        )
        return [(j, n, a) for j, n, a in self.session.execute(query)]
