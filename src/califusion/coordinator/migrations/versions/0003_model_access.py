"""Model access: a job's offer (the final model sealed under a model key) and grants to buyers.

Revision ID: 0003
Revises: 0002
Create Date: 2025-07-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

PRINCIPAL = sa.String(length=63)
DIGEST = sa.String(length=64)
JOB_ID = sa.String(length=36)


def upgrade() -> None:
    op.create_table(
        "model_offers",
        sa.Column("job_id", JOB_ID, nullable=False),
        sa.Column("model", DIGEST, nullable=False),
        sa.Column("offered_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["jobs.job_id"], name=op.f("fk_model_offers_job_id_jobs")
        ),
        sa.PrimaryKeyConstraint("job_id", name=op.f("pk_model_offers")),
    )
    op.create_table(
        "model_grants",
        sa.Column("job_id", JOB_ID, nullable=False),
        sa.Column("buyer", PRINCIPAL, nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("granted_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["model_offers.job_id"], name=op.f("fk_model_grants_job_id_model_offers")
        ),
        sa.ForeignKeyConstraint(
            ["buyer"], ["principals.principal"], name=op.f("fk_model_grants_buyer_principals")
        ),
        sa.PrimaryKeyConstraint("job_id", "buyer", name=op.f("pk_model_grants")),
    )


def downgrade() -> None:
    op.drop_table("model_grants")
    op.drop_table("model_offers")
