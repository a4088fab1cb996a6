"""The ledger's tables, and the one function that creates them.

``create_schema`` is the only DDL entry point, so an Alembic migration can replace it later.
Accounts are stored as (owner bytes, 32-byte subaccount) with the default subaccount as 32 zero
bytes; amounts are BIGINT (the token cap keeps them below 2^63).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Engine,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    insert,
    select,
)

from califusion.crypto.principal import Account
from califusion.ledger.blocks import Block

TIP_ID = 1


metadata = MetaData()

blocks_table = Table(
    "ledger_blocks",
    metadata,
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary, nullable=False),
    Column("phash", LargeBinary, nullable=True),
    Column("encoded", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("from_owner", LargeBinary),
    Column("from_sub", LargeBinary),
    Column("to_owner", LargeBinary),
    Column("to_sub", LargeBinary),
    Column("spender_owner", LargeBinary),
    Column("spender_sub", LargeBinary),
    Column("amount", BigInteger, nullable=False),
    Column("fee", BigInteger, nullable=False),
    Column("memo", LargeBinary),
    Column("ts", BigInteger, nullable=False),
    Column("created_at_time", BigInteger),
)
# (account, idx): an account's history is an index range scan per role, newest first. Partial
# indexes skip the blocks without that role (a mint has no from, most blocks no spender or
# memo), so an append maintains only the indexes it needs.
for _name, _columns in (
    ("from_idx", ("from_owner", "from_sub", "idx")),
    ("to_idx", ("to_owner", "to_sub", "idx")),
    ("spender_idx", ("spender_owner", "spender_sub", "idx")),
    ("memo_idx", ("memo", "idx")),
):
    _present = blocks_table.c[_columns[0]].is_not(None)
    Index(
        f"ix_ledger_blocks_{_name}",
        *(blocks_table.c[column] for column in _columns),
        sqlite_where=_present,
        postgresql_where=_present,
    )

balances_table = Table(
    "ledger_balances",
    metadata,
    Column("owner", LargeBinary, primary_key=True),
    Column("subaccount", LargeBinary, primary_key=True),
    Column("amount", BigInteger, nullable=False),
    CheckConstraint("amount > 0", name="ck_ledger_balances_positive"),
)

allowances_table = Table(
    "ledger_allowances",
    metadata,
    Column("owner", LargeBinary, primary_key=True),
    Column("subaccount", LargeBinary, primary_key=True),
    Column("spender_owner", LargeBinary, primary_key=True),
    Column("spender_subaccount", LargeBinary, primary_key=True),
    Column("amount", BigInteger, nullable=False),
    # nat64 does not fit a signed BIGINT: 20 zero-padded decimal digits keep it exact and ordered.
    Column("expires_at", String(20), nullable=True),
    Column("arrived_at", BigInteger, nullable=False),
    CheckConstraint("amount > 0", name="ck_ledger_allowances_positive"),
)

dedup_table = Table(
    "ledger_dedup",
    metadata,
    Column("tx_hash", LargeBinary, primary_key=True),
    Column("block_index", BigInteger, nullable=False),
    Column("block_ts", BigInteger, nullable=False, index=True),
)

tip_table = Table(
    "ledger_tip",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("length", BigInteger, nullable=False),
    Column("last_hash", LargeBinary, nullable=True),
    Column("last_ts", BigInteger, nullable=True),
    Column("total_supply", BigInteger, nullable=False),
)


# Indexes of earlier versions, replaced by the (account, idx) ones above.
_REPLACED_INDEXES = (
    "ix_ledger_blocks_from",
    "ix_ledger_blocks_to",
    "ix_ledger_blocks_spender",
    "ix_ledger_blocks_memo",
)


def create_schema(engine: Engine) -> None:
    """Create the ledger tables, their indexes and the tip row where missing.

    Idempotent, and the only DDL of the ledger: an index added to a table that already exists
    is created too (``create_all`` alone would skip it), and the indexes it replaced dropped.
    """
    metadata.create_all(engine)
    with engine.begin() as conn:
        for table in metadata.sorted_tables:
            for index in table.indexes:
                index.create(conn, checkfirst=True)
        for name in _REPLACED_INDEXES:
            conn.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
        if conn.execute(select(tip_table.c.id)).first() is None:
            conn.execute(insert(tip_table).values(id=TIP_ID, length=0, total_supply=0))


def account_key(account: Account) -> tuple[bytes, bytes]:
    return account.owner.raw, account.effective_subaccount


def block_columns(block: Block) -> dict[str, Any]:
    """The decoded search columns of a block, as the store writes them."""
    tx = block.tx
    columns: dict[str, Any] = {
        "kind": block.block_type,
        "amount": tx.amount,
        "fee": block.fee_charged,
        "memo": tx.memo,
        "ts": block.timestamp,
        "created_at_time": tx.created_at_time,
    }
    for name, account in (("from", tx.from_), ("to", tx.to), ("spender", tx.spender)):
        owner, sub = account_key(account) if account is not None else (None, None)
        columns[f"{name}_owner"], columns[f"{name}_sub"] = owner, sub
    return columns
