"""Writing one batch of commits in one transaction: :class:`BatchWriter`.

The writer holds the tip lock (see :mod:`califusion.ledger.store`) and writes a whole batch in
a few statements: the new blocks as one multi-row ``INSERT``, the balances and allowances the
batch changed — each account once, however often it moved — as one multi-row upsert each (a
row that drops to zero is deleted), the dedup entries, the tip. A batch of a few hundred
transfers costs a handful of statements and one commit: one disk flush.

The statements are driver SQL generated from the table definitions (so the schema stays in one
place) and skip SQLAlchemy's per-row parameter processing, which cost more than the rules of a
transfer. Upserts (``ON CONFLICT ... DO UPDATE``) are spelled the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Connection, Table, delete

from califusion.crypto.principal import Account
from califusion.ledger.block_codec import encode_block
from califusion.ledger.cache import AllowanceChange, BalanceChange, BatchView
from califusion.ledger.model import ChainTip, Commit, StoredAllowance
from califusion.ledger.schema import (
    TIP_ID,
    account_key,
    allowances_table,
    balances_table,
    blocks_table,
    dedup_table,
    tip_table,
)
from califusion.ledger.sql_read import StoreReader

Row = tuple[Any, ...]
# Rows per multi-row statement: 256 blocks are 4,096 parameters, far below both databases'
# limits (SQLite 32,766, PostgreSQL 65,535), and the SQL text per row count is cached.
_ROWS_PER_STATEMENT = 256
_BLOCK_COLUMNS = tuple(column.name for column in blocks_table.columns)
_BALANCE_KEY = ("owner", "subaccount")
_ALLOWANCE_KEY = ("owner", "subaccount", "spender_owner", "spender_subaccount")
_ALLOWANCE_VALUES = ("amount", "expires_at", "arrived_at")
_TIP_COLUMNS = ("length", "last_hash", "last_ts", "total_supply")


def _names(table: Table, columns: Sequence[str]) -> list[str]:
    return [table.c[name].name for name in columns]  # KeyError on a typo, not bad SQL


@dataclass(frozen=True, slots=True)
class _MultiRow:
    """``INSERT INTO table (columns) VALUES (...), (...) [ON CONFLICT (key) DO UPDATE ...]``."""

    table: Table
    columns: tuple[str, ...]
    placeholder: str
    conflict_key: tuple[str, ...] = ()

    def sql(self, rows: int) -> str:
        return _multirow_sql(self, rows)

    def execute(self, cursor: Any, rows: list[Row]) -> None:
        for start in range(0, len(rows), _ROWS_PER_STATEMENT):
            chunk = rows[start : start + _ROWS_PER_STATEMENT]
            cursor.execute(self.sql(len(chunk)), [value for row in chunk for value in row])


@lru_cache(maxsize=4096)
def _multirow_sql(statement: _MultiRow, rows: int) -> str:
    table, placeholder = statement.table, statement.placeholder
    names = _names(table, statement.columns)
    group = "(" + ", ".join(placeholder for _ in names) + ")"
    # Only schema names and placeholders go into the text; every value is a parameter.
    values = ", ".join([group] * rows)
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES {values}"  # noqa: S608
    if statement.conflict_key:
        updated = [name for name in names if name not in statement.conflict_key]
        sets = ", ".join(f"{name} = excluded.{name}" for name in updated)
        key = ", ".join(_names(table, statement.conflict_key))
        sql += f" ON CONFLICT ({key}) DO UPDATE SET {sets}"
    return sql


def _where(table: Table, key: Sequence[str], placeholder: str) -> str:
    return " AND ".join(f"{name} = {placeholder}" for name in _names(table, key))


class _Statements:
    """The batch statements with ``placeholder`` parameters (``?`` sqlite3, ``%s`` psycopg)."""

    def __init__(self, placeholder: str) -> None:
        p = placeholder
        self.insert_blocks = _MultiRow(blocks_table, _BLOCK_COLUMNS, p)
        self.upsert_balances = _MultiRow(balances_table, (*_BALANCE_KEY, "amount"), p, _BALANCE_KEY)
        self.delete_balance = (
            f"DELETE FROM {balances_table.name} WHERE {_where(balances_table, _BALANCE_KEY, p)}"  # noqa: S608
        )
        self.upsert_allowances = _MultiRow(
            allowances_table, (*_ALLOWANCE_KEY, *_ALLOWANCE_VALUES), p, _ALLOWANCE_KEY
        )
        where = _where(allowances_table, _ALLOWANCE_KEY, p)
        self.delete_allowance = f"DELETE FROM {allowances_table.name} WHERE {where}"  # noqa: S608
        self.insert_dedup = _MultiRow(dedup_table, ("tx_hash", "block_index", "block_ts"), p)
        sets = ", ".join(f"{name} = {p}" for name in _names(tip_table, _TIP_COLUMNS))
        self.update_tip = f"UPDATE {tip_table.name} SET {sets} WHERE id = {p}"  # noqa: S608
        # SQLite has no row locks: its writer lock is the transaction's BEGIN IMMEDIATE.
        lock = "" if placeholder == "?" else " FOR UPDATE"
        columns = ", ".join(_names(tip_table, _TIP_COLUMNS))
        self.lock_tip = f"SELECT {columns} FROM {tip_table.name} WHERE id = {p}{lock}"  # noqa: S608


_QMARK = _Statements("?")
_FORMAT = _Statements("%s")


def encode_nat64(value: int | None) -> str | None:
    """nat64 does not fit a signed BIGINT: 20 zero-padded digits keep it exact and ordered."""
    return None if value is None else f"{value:020d}"


_ROW_ORDER = (
    "idx", "hash", "phash", "encoded", "kind", "from_owner", "from_sub", "to_owner", "to_sub",
    "spender_owner", "spender_sub", "amount", "fee", "memo", "ts", "created_at_time",
)  # fmt: skip
assert _ROW_ORDER == _BLOCK_COLUMNS, "block_row must follow ledger_blocks' columns"


def _key(account: Account | None) -> tuple[bytes | None, bytes | None]:
    return account_key(account) if account is not None else (None, None)


def block_row(commit: Commit) -> Row:
    """The ``ledger_blocks`` row of a commit, in table column order (the search columns are
    those of :func:`~califusion.ledger.schema.block_columns`, which the verifier checks)."""
    block = commit.block
    tx = block.tx
    return (
        commit.index,
        commit.block_hash,
        block.parent_hash,
        encode_block(block),
        block.block_type,
        *_key(tx.from_),
        *_key(tx.to),
        *_key(tx.spender),
        tx.amount,
        block.fee_charged,
        tx.memo,
        block.timestamp,
        tx.created_at_time,
    )


def _allowance_values(allowance: StoredAllowance) -> Row:
    return allowance.amount, encode_nat64(allowance.expires_at), allowance.arrived_at


class BatchWriter(StoreReader):
    """A write transaction; :meth:`lock_tip` is its first statement."""

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self._sql = _QMARK if conn.dialect.paramstyle == "qmark" else _FORMAT

    def lock_tip(self) -> ChainTip:
        """Take the tip lock (held until the transaction ends) and return the tip."""
        cursor = self._driver_cursor()
        try:
            cursor.execute(self._sql.lock_tip, (TIP_ID,))
            length, last_hash, last_ts, total_supply = cursor.fetchone()
        finally:
            cursor.close()
        return ChainTip(
            length=length,
            last_hash=bytes(last_hash) if last_hash is not None else None,
            last_timestamp=last_ts,
            total_supply=total_supply,
        )

    def _driver_cursor(self) -> Any:
        return self._conn.connection.driver_connection.cursor()  # type: ignore[union-attr]

    def write(self, view: BatchView) -> None:
        """Write every commit of ``view`` and the state they leave behind."""
        if not view.commits:
            return
        sql = self._sql
        cursor = self._driver_cursor()
        try:
            rows = view.block_rows
            if len(rows) != len(view.commits):
                rows = [block_row(commit) for commit in view.commits]
            sql.insert_blocks.execute(cursor, rows)
            self._write_balances(cursor, view.balance_changes())
            self._write_allowances(cursor, view.allowance_changes())
            dedup = [(e.tx_hash, e.block_index, e.block_ts) for e in view.dedup_entries()]
            sql.insert_dedup.execute(cursor, dedup)
            tip = view.tip()
            cursor.execute(
                sql.update_tip,
                (tip.length, tip.last_hash, tip.last_timestamp, tip.total_supply, TIP_ID),
            )
        finally:
            cursor.close()

    def _write_balances(self, cursor: Any, changes: list[BalanceChange]) -> None:
        upserts: list[Row] = []
        deletes: list[Row] = []
        for change in changes:
            key = account_key(change.account)
            if change.new:
                upserts.append((*key, change.new))
            else:
                deletes.append(key)
        if deletes:
            cursor.executemany(self._sql.delete_balance, deletes)
        self._sql.upsert_balances.execute(cursor, upserts)

    def _write_allowances(self, cursor: Any, changes: list[AllowanceChange]) -> None:
        upserts: list[Row] = []
        deletes: list[Row] = []
        for change in changes:
            account, spender = change.key
            key = account_key(account) + account_key(spender)
            if change.new is None:
                deletes.append(key)
            else:
                upserts.append(key + _allowance_values(change.new))
        if deletes:
            cursor.executemany(self._sql.delete_allowance, deletes)
        self._sql.upsert_allowances.execute(cursor, upserts)

    def forget_transactions_before(self, block_ts: int) -> None:
        """Drop dedup entries of blocks made before ``block_ts`` (outside any dedup window)."""
        self._conn.execute(delete(dedup_table).where(dedup_table.c.block_ts < block_ts))
