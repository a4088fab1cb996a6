"""SQL, and nothing else: the services decide, the repositories read and write rows.

Foreign exceptions are translated here, where they enter: a unique-key violation becomes
:class:`Conflict`. Every method works inside the caller's transaction (``Database.transaction``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import func, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from califusion.coordinator.db.models import JobRow, MemberRow, PrincipalRow, RoundRow, UpdateRow
from califusion.core.errors import Conflict, NotFound
from califusion.protocol.jobs import JobState, MemberState, RoundState


@contextmanager
def unique(message: str) -> Iterator[None]:
    """A uniqueness violation inside the block is a :class:`Conflict` saying ``message``."""
    try:
        yield
    except IntegrityError as exc:
        raise Conflict(message) from exc


class PrincipalRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(self, principal: str) -> PrincipalRow | None:
        return self.session.get(PrincipalRow, principal)

    def add(self, row: PrincipalRow) -> None:
        with unique(f"principal {row.principal} is already registered"):
            self.session.add(row)
            self.session.flush()


class JobRepository:
    """Jobs and what hangs off them: members, rounds, updates."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # ---- jobs ------------------------------------------------------------------------------

    def add_job(self, row: JobRow) -> None:
        with unique(f"job {row.job_id} already exists"):
            self.session.add(row)
            self.session.flush()

    def get_job(self, job_id: str, *, lock: bool = False) -> JobRow | None:
        """The job; with ``lock``, its row is locked until the transaction ends (PostgreSQL
        ``FOR UPDATE``; SQLite transactions already hold the database's write lock)."""
        query = select(JobRow).where(JobRow.job_id == job_id)
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        return self.session.scalars(query).one_or_none()

    def list_jobs(
        self,
        *,
        state: JobState | None,
        publisher: str | None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Sequence[JobRow]:
        """Jobs oldest first; a page starts after the job ``after`` (keyset: no skipped rows)."""
        query = select(JobRow).order_by(JobRow.created_at, JobRow.job_id)
        if state is not None:
            query = query.where(JobRow.state == state.value)
        if publisher is not None:
            query = query.where(JobRow.publisher == publisher)
        if after is not None:
            anchor = self.session.get(JobRow, after)
            if anchor is None:
                raise NotFound(f"no job {after!r} to page after")
            query = query.where(
                tuple_(JobRow.created_at, JobRow.job_id) > tuple_(anchor.created_at, anchor.job_id)
            )
        if limit is not None:
            query = query.limit(limit)
        return self.session.scalars(query).all()

    def due_job_ids(self, now: float) -> Sequence[str]:
        """Jobs whose current round is collecting past its deadline."""
        query = (
            select(JobRow.job_id)
            .join(
                RoundRow,
                (RoundRow.job_id == JobRow.job_id) & (RoundRow.number == JobRow.current_round),
            )
            .where(
                JobRow.state == JobState.TRAINING.value,
                RoundRow.state == RoundState.COLLECTING.value,
                RoundRow.deadline < now,
            )
        )
        return self.session.scalars(query).all()

    # ---- members ---------------------------------------------------------------------------

    def add_member(self, row: MemberRow) -> None:
        with unique(f"{row.trainer} has already joined job {row.job_id}"):
            self.session.add(row)
            self.session.flush()

    def member(self, job_id: str, trainer: str) -> MemberRow | None:
        return self.session.get(MemberRow, (job_id, trainer))

    def members(self, job_id: str) -> Sequence[MemberRow]:
        query = (
            select(MemberRow)
            .where(MemberRow.job_id == job_id)
            .order_by(MemberRow.joined_at, MemberRow.trainer)
        )
        return self.session.scalars(query).all()

    def member_counts(self, job_id: str) -> dict[MemberState, int]:
        query = (
            select(MemberRow.state, func.count())
            .where(MemberRow.job_id == job_id)
            .group_by(MemberRow.state)
        )
        counts = dict.fromkeys(MemberState, 0)
        for state, count in self.session.execute(query):
            counts[MemberState(state)] = count
        return counts

    def admitted_counts(self, job_ids: Sequence[str]) -> dict[str, int]:
        if not job_ids:
            return {}
        query = (
            select(MemberRow.job_id, func.count())
            .where(MemberRow.job_id.in_(job_ids), MemberRow.state == MemberState.ADMITTED.value)
            .group_by(MemberRow.job_id)
        )
        return dict(self.session.execute(query).all())

    # ---- rounds and updates ----------------------------------------------------------------

    def add_round(self, row: RoundRow) -> None:
        with unique(f"round {row.number} of job {row.job_id} already exists"):
            self.session.add(row)
            self.session.flush()

    def round(self, job_id: str, number: int) -> RoundRow | None:
        return self.session.get(RoundRow, (job_id, number))

    def rounds(self, job_id: str) -> Sequence[RoundRow]:
        query = select(RoundRow).where(RoundRow.job_id == job_id).order_by(RoundRow.number)
        return self.session.scalars(query).all()

    def add_update(self, row: UpdateRow) -> None:
        with unique(
            f"{row.trainer} already submitted an update for round {row.round_number} "
            f"attempt {row.attempt}"
        ):
            self.session.add(row)
            self.session.flush()

    def updates(self, job_id: str, number: int, attempt: int) -> Sequence[UpdateRow]:
        query = (
            select(UpdateRow)
            .where(
                UpdateRow.job_id == job_id,
                UpdateRow.round_number == number,
                UpdateRow.attempt == attempt,
            )
            .order_by(UpdateRow.submitted_at, UpdateRow.trainer)
        )
        return self.session.scalars(query).all()

    def count_updates(self, job_id: str, number: int, attempt: int) -> int:
        query = select(func.count()).where(
            UpdateRow.job_id == job_id,
            UpdateRow.round_number == number,
            UpdateRow.attempt == attempt,
        )
        return self.session.scalar(query) or 0

    def update_counts(self, job_id: str) -> dict[tuple[int, int], int]:
        """Updates per (round number, attempt) of a job."""
        query = (
            select(UpdateRow.round_number, UpdateRow.attempt, func.count())
            .where(UpdateRow.job_id == job_id)
            .group_by(UpdateRow.round_number, UpdateRow.attempt)
        )
        return {(n, a): c for n, a, c in self.session.execute(query)}
