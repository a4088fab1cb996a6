"""Secure aggregation: a SecAgg+ session per round attempt and its event log.

Jobs created before this revision were aggregated by their publisher; their stored specs had no
``aggregation_mode``, which now defaults to ``secure`` for new jobs, so this revision writes
``"publisher"`` into them to keep running them as they were created.

Revision ID: 0002
Revises: 0001
Create Date: 2025-07-01
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

DIGEST = sa.String(length=64)
STATE = sa.String(length=16)
JOB_ID = sa.String(length=36)
SESSION = ["job_id", "round_number", "attempt"]


def upgrade() -> None:
    op.create_table(
        "secagg_sessions",
        sa.Column("job_id", JOB_ID, nullable=False),
        sa.Column("round_number", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("mode", STATE, nullable=False),
        sa.Column("round_id", sa.LargeBinary(length=16), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("start", sa.Double(), nullable=False),
        sa.Column("participants", sa.JSON(), nullable=False),
        sa.Column("stage", STATE, nullable=False),
        sa.Column("deadline", sa.Double(), nullable=False),
        sa.Column("events", sa.Integer(), nullable=False),
        sa.Column("result_digest", DIGEST, nullable=True),
        sa.Column("contributors", sa.JSON(), nullable=False),
        sa.Column("dropped", sa.JSON(), nullable=False),
        sa.Column("abort_reason", sa.Text(), nullable=False),
        sa.Column("transcript", sa.Text(), nullable=True),
        sa.Column("transcript_signature", sa.LargeBinary(length=64), nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id", "round_number"],
            ["rounds.job_id", "rounds.number"],
            name="fk_secagg_sessions_round",
        ),
        sa.PrimaryKeyConstraint(*SESSION, name=op.f("pk_secagg_sessions")),
    )
    op.create_index(
        op.f("ix_secagg_sessions_stage_deadline"), "secagg_sessions", ["stage", "deadline"]
    )
    op.create_table(
        "secagg_events",
        sa.Column("job_id", JOB_ID, nullable=False),
        sa.Column("round_number", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.Double(), nullable=False),
        sa.Column("kind", STATE, nullable=False),
        sa.Column("sender", sa.Integer(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("blob", DIGEST, nullable=True),
        sa.ForeignKeyConstraint(
            SESSION,
            [f"secagg_sessions.{column}" for column in SESSION],
            name="fk_secagg_events_session",
        ),
        sa.PrimaryKeyConstraint(*SESSION, "seq", name=op.f("pk_secagg_events")),
    )
    _mark_existing_jobs_publisher_aggregated()


def _mark_existing_jobs_publisher_aggregated() -> None:
    connection = op.get_bind()
    jobs = sa.table("jobs", sa.column("job_id", JOB_ID), sa.column("spec", sa.JSON()))
    for job_id, spec in connection.execute(sa.select(jobs.c.job_id, jobs.c.spec)).all():
        stored = json.loads(spec) if isinstance(spec, str) else dict(spec)
        if "aggregation_mode" not in stored:
            stored["aggregation_mode"] = "publisher"
            connection.execute(jobs.update().where(jobs.c.job_id == job_id).values(spec=stored))


def downgrade() -> None:
    op.drop_table("secagg_events")
    op.drop_index(op.f("ix_secagg_sessions_stage_deadline"), table_name="secagg_sessions")
    op.drop_table("secagg_sessions")
