"""The escrow's tables: they live in the ledger's database, inside the ledger's boundary.

Own ``MetaData`` (prefix ``escrow_``), so the ledger's schema and its tests are untouched.

- ``escrow_jobs``: one row per job: the signed terms as received, and the settlement once it is
  decided (ending, cut-off block, anchor time) — written once, never changed;
- ``escrow_statements``: the publisher's signed round and close statements, as received;
- ``escrow_payments``: one row per payment made (memo → block index): the executor's progress.
  The ledger's block log stays the source of truth; this table only saves looking there.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

JOB_ID = String(64)

jobs_table = Table(
    "escrow_jobs",
    metadata,
    Column("job_id", JOB_ID, primary_key=True),
    Column("terms", Text, nullable=False),
    Column("signing_public", LargeBinary, nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("registered_ns", BigInteger, nullable=False),
    Column("ending", String(16), nullable=True),
    Column("cutoff", BigInteger, nullable=True),
    Column("anchor_ns", BigInteger, nullable=True),
)

statements_table = Table(
    "escrow_statements",
    metadata,
    Column("job_id", JOB_ID, primary_key=True),
    Column("kind", String(8), primary_key=True),  # "round" or "close"
    Column("seq", Integer, primary_key=True),  # the round number; 0 for a close statement
    Column("payload", Text, nullable=False),
    Column("signing_public", LargeBinary, nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("recorded_ns", BigInteger, nullable=False),
)

payments_table = Table(
    "escrow_payments",
    metadata,
    Column("memo", LargeBinary, primary_key=True),
    Column("job_id", JOB_ID, nullable=False, index=True),
    Column("batch", BigInteger, nullable=False),
    Column("idx", Integer, nullable=False),
    Column("to_owner", LargeBinary, nullable=False),
    Column("to_sub", LargeBinary, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("block_index", BigInteger, nullable=False),
    Column("recorded_ns", BigInteger, nullable=False),
)


def create_escrow_schema(engine: Engine) -> None:
    """Create the escrow tables if missing (idempotent)."""
    metadata.create_all(engine)
