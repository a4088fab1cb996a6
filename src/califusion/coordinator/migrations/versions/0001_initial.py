"""The coordinator's first schema: principals, jobs, members, rounds, updates, nonces.

Revision ID: 0001
Revises:
Create Date: 2025-06-15
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

PRINCIPAL = sa.String(length=63)
DIGEST = sa.String(length=64)
STATE = sa.String(length=16)
JOB_ID = sa.String(length=36)


def upgrade() -> None:
    op.create_table(
        "principals",
        sa.Column("principal", PRINCIPAL, nullable=False),
        sa.Column("signing_public", sa.LargeBinary(length=32), nullable=False),
        sa.Column("agreement_public", sa.LargeBinary(length=32), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("registered_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("principal", name=op.f("pk_principals")),
    )
    op.create_table(
        "nonces",
        sa.Column("principal", PRINCIPAL, nullable=False),
        sa.Column("nonce", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("principal", "nonce", name=op.f("pk_nonces")),
    )
    op.create_index(op.f("ix_nonces_expires_at"), "nonces", ["expires_at"])
    op.create_table(
        "jobs",
        sa.Column("job_id", JOB_ID, nullable=False),
        sa.Column("publisher", PRINCIPAL, nullable=False),
        sa.Column("aggregator_agreement_public", sa.LargeBinary(length=32), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("state", STATE, nullable=False),
        sa.Column("state_reason", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("current_round", sa.Integer(), nullable=False),
        sa.Column("rounds_completed", sa.Integer(), nullable=False),
        sa.Column("initial_model", DIGEST, nullable=False),
        sa.Column("final_model", DIGEST, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["publisher"], ["principals.principal"], name=op.f("fk_jobs_publisher_principals")
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_jobs")),
    )
    op.create_index(op.f("ix_jobs_publisher"), "jobs", ["publisher"])
    op.create_index(op.f("ix_jobs_state"), "jobs", ["state"])
    op.create_table(
        "members",
        sa.Column("job_id", JOB_ID, nullable=False),
        sa.Column("trainer", PRINCIPAL, nullable=False),
        sa.Column("state", STATE, nullable=False),
        sa.Column("declared_samples", sa.BigInteger(), nullable=False),
        sa.Column("joined_at", sa.Double(), nullable=False),
        sa.Column("rounds_contributed", sa.Integer(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.job_id"], name=op.f("fk_members_job_id_jobs")),
        sa.ForeignKeyConstraint(
            ["trainer"], ["principals.principal"], name=op.f("fk_members_trainer_principals")
        ),
        sa.PrimaryKeyConstraint("job_id", "trainer", name=op.f("pk_members")),
    )
    op.create_table(
        "rounds",
        sa.Column("job_id", JOB_ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("state", STATE, nullable=False),
        sa.Column("model", DIGEST, nullable=False),
        sa.Column("opened_at", sa.Double(), nullable=False),
        sa.Column("deadline", sa.Double(), nullable=False),
        sa.Column("result_model", DIGEST, nullable=True),
        sa.Column("contributors", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.job_id"], name=op.f("fk_rounds_job_id_jobs")),
        sa.PrimaryKeyConstraint("job_id", "number", name=op.f("pk_rounds")),
    )
    op.create_index(op.f("ix_rounds_state_deadline"), "rounds", ["state", "deadline"])
    op.create_table(
        "updates",
        sa.Column("job_id", JOB_ID, nullable=False),
        sa.Column("round_number", sa.Integer(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("trainer", PRINCIPAL, nullable=False),
        sa.Column("update_digest", DIGEST, nullable=False),
        sa.Column("submitted_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id", "round_number"], ["rounds.job_id", "rounds.number"], name="fk_updates_round"
        ),
        sa.ForeignKeyConstraint(
            ["trainer"], ["principals.principal"], name=op.f("fk_updates_trainer_principals")
        ),
        sa.PrimaryKeyConstraint(
            "job_id", "round_number", "attempt", "trainer", name=op.f("pk_updates")
        ),
    )


def downgrade() -> None:
    op.drop_table("updates")
    op.drop_index(op.f("ix_rounds_state_deadline"), table_name="rounds")
    op.drop_table("rounds")
    op.drop_table("members")
    op.drop_index(op.f("ix_jobs_state"), table_name="jobs")
    op.drop_index(op.f("ix_jobs_publisher"), table_name="jobs")
    op.drop_table("jobs")
    op.drop_index(op.f("ix_nonces_expires_at"), table_name="nonces")
    op.drop_table("nonces")
    op.drop_table("principals")
