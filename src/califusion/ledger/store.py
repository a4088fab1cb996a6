"""The ledger's SQL store: its own engine, its own tables, one transaction per call.

Tables (prefix ``ledger_``): ``blocks`` (index, hash, parent hash, the block as canonical ICRC-3
JSON, and decoded columns for search), ``balances`` (non-zero balances only), ``allowances``,
``dedup`` (tx hash → block index, pruned after the dedup window) and ``tip`` (one row: chain
length, last hash and time, total supply).

Writers serialize on the tip row: on PostgreSQL ``SELECT ... FOR UPDATE`` on it is the first
statement of every write transaction (READ COMMITTED, so every later read sees the latest commit),
on SQLite the transaction starts with ``BEGIN IMMEDIATE``. Every write appends a block, so every
writer needs that row: writes run one at a time, in one order, with nothing else to deadlock on.
Errors of the database driver become :class:`~califusion.core.errors.Unavailable`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Table,
    create_engine,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.pool import StaticPool

from califusion.core.errors import Conflict, Unavailable
from califusion.crypto.principal import Account, Principal
from califusion.ledger.blocks import Block
from califusion.ledger.icrc3 import Value, decode_value, encode_value
from califusion.ledger.model import AllowanceKey, ChainTip, Commit, StoredAllowance
from califusion.ledger.schema import (
    TIP_ID,
    account_key,
    allowances_table,
    balances_table,
    block_columns,
    blocks_table,
    create_schema,
    dedup_table,
    tip_table,
)


def _account(owner: bytes, subaccount: bytes) -> Account:
    return Account(Principal(owner), subaccount)


def _encode_nat64(value: int | None) -> str | None:
    return None if value is None else f"{value:020d}"


@dataclass(frozen=True, slots=True)
class StoredBlock:
    """A block row: what was stored, to be re-verified, not trusted."""

    index: int
    hash: bytes
    parent_hash: bytes | None
    encoded: str
    columns: Mapping[str, Any]

    def value(self) -> Value:
        return decode_value(self.encoded)


_WRITE_OPTION = "califusion_ledger_write"
_DECODED_COLUMNS = (
    "kind", "from_owner", "from_sub", "to_owner", "to_sub", "spender_owner", "spender_sub",
    "amount", "fee", "memo", "ts", "created_at_time",
)  # fmt: skip


def _stored_block(row: Any) -> StoredBlock:
    mapping = row._mapping
    columns = {name: mapping[name] for name in _DECODED_COLUMNS}
    for name, value in columns.items():
        if isinstance(value, memoryview):
            columns[name] = bytes(value)
    phash = mapping["phash"]
    return StoredBlock(
        index=mapping["idx"],
        hash=bytes(mapping["hash"]),
        parent_hash=bytes(phash) if phash is not None else None,
        encoded=mapping["encoded"],
        columns=columns,
    )


class StoreReader:
    """Reads inside one transaction; implements :class:`~califusion.ledger.model.LedgerView`."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def tip(self) -> ChainTip:
        return self._read_tip(lock=False)

    def _read_tip(self, *, lock: bool) -> ChainTip:
        stmt = select(tip_table).where(tip_table.c.id == TIP_ID)
        row = self._conn.execute(stmt.with_for_update() if lock else stmt).one()
        last_hash = row.last_hash
        return ChainTip(
            length=row.length,
            last_hash=bytes(last_hash) if last_hash is not None else None,
            last_timestamp=row.last_ts,
            total_supply=row.total_supply,
        )

    def balance_of(self, account: Account) -> int:
        owner, sub = account_key(account)
        stmt = select(balances_table.c.amount).where(
            balances_table.c.owner == owner, balances_table.c.subaccount == sub
        )
        amount = self._conn.execute(stmt).scalar_one_or_none()
        return int(amount) if amount is not None else 0

    def allowance_of(self, account: Account, spender: Account) -> StoredAllowance | None:
        row = self._conn.execute(
            select(allowances_table).where(*_allowance_where(account, spender))
        ).first()
        if row is None:
            return None
        expires_at = int(row.expires_at) if row.expires_at is not None else None
        return StoredAllowance(int(row.amount), expires_at, int(row.arrived_at))

    def find_transaction(self, tx_hash: bytes) -> int | None:
        stmt = select(dedup_table.c.block_index).where(dedup_table.c.tx_hash == tx_hash)
        index = self._conn.execute(stmt).scalar_one_or_none()
        return int(index) if index is not None else None

    def blocks(self, start: int, length: int) -> list[StoredBlock]:
        stmt = (
            select(blocks_table)
            .where(blocks_table.c.idx >= start, blocks_table.c.idx < start + length)
            .order_by(blocks_table.c.idx)
        )
        return [_stored_block(row) for row in self._conn.execute(stmt)]

    def iter_blocks(self, batch: int = 1000) -> Iterator[StoredBlock]:
        start = 0
        while True:
            chunk = self.blocks(start, batch)
            yield from chunk
            if len(chunk) < batch:
                return
            start = chunk[-1].index + 1

    def balances(self) -> dict[Account, int]:
        rows = self._conn.execute(select(balances_table))
        return {_account(bytes(r.owner), bytes(r.subaccount)): int(r.amount) for r in rows}

    def allowances(self) -> dict[AllowanceKey, StoredAllowance]:
        result: dict[AllowanceKey, StoredAllowance] = {}
        for row in self._conn.execute(select(allowances_table)):
            key = (
                _account(bytes(row.owner), bytes(row.subaccount)),
                _account(bytes(row.spender_owner), bytes(row.spender_subaccount)),
            )
            expires_at = int(row.expires_at) if row.expires_at is not None else None
            result[key] = StoredAllowance(int(row.amount), expires_at, int(row.arrived_at))
        return result


def _allowance_where(account: Account, spender: Account) -> tuple[Any, ...]:
    owner, sub = account_key(account)
    spender_owner, spender_sub = account_key(spender)
    c = allowances_table.c
    return (
        c.owner == owner,
        c.subaccount == sub,
        c.spender_owner == spender_owner,
        c.spender_subaccount == spender_sub,
    )


class StoreWriter(StoreReader):
    """A write transaction that holds the tip lock; :meth:`apply` writes one :class:`Commit`.

    It remembers the tip it locked and which balance and allowance rows it saw, so a call costs
    one statement per row it reads or writes and no more.
    """

    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self._tip: ChainTip | None = None
        self._row_exists: dict[tuple[bytes, ...], bool] = {}

    def lock_tip(self) -> None:
        self._tip = self._read_tip(lock=True)

    def tip(self) -> ChainTip:
        if self._tip is None:
            self.lock_tip()
        assert self._tip is not None
        return self._tip

    def balance_of(self, account: Account) -> int:
        amount = super().balance_of(account)
        self._row_exists[account_key(account)] = amount > 0
        return amount

    def allowance_of(self, account: Account, spender: Account) -> StoredAllowance | None:
        allowance = super().allowance_of(account, spender)
        self._row_exists[account_key(account) + account_key(spender)] = allowance is not None
        return allowance

    def apply(self, commit: Commit) -> None:
        tip = self.tip()
        if commit.index != tip.length or commit.block.parent_hash != tip.last_hash:
            raise Conflict(f"block {commit.index} does not extend the chain tip {tip.length}")
        block = commit.block
        self._conn.execute(
            insert(blocks_table).values(
                idx=commit.index,
                hash=commit.block_hash,
                phash=block.parent_hash,
                encoded=_encode_block(block),
                **block_columns(block),
            )
        )
        for account, amount in commit.balances.items():
            self._set_balance(account, amount)
        for (account, spender), allowance in commit.allowances.items():
            self._set_allowance(account, spender, allowance)
        if commit.dedup_hash is not None:
            self._conn.execute(
                insert(dedup_table).values(
                    tx_hash=commit.dedup_hash, block_index=commit.index, block_ts=block.timestamp
                )
            )
        self._tip = ChainTip(
            commit.index + 1, commit.block_hash, block.timestamp, commit.total_supply
        )
        self._conn.execute(
            update(tip_table)
            .where(tip_table.c.id == TIP_ID)
            .values(
                length=self._tip.length,
                last_hash=self._tip.last_hash,
                last_ts=self._tip.last_timestamp,
                total_supply=self._tip.total_supply,
            )
        )

    def _upsert(
        self,
        table: Table,
        key: tuple[bytes, ...],
        where: tuple[Any, ...],
        values: dict[str, Any] | None,
    ) -> None:
        """Write one row (``None`` deletes it), using what this transaction already saw."""
        existed = self._row_exists.get(key)
        self._row_exists[key] = values is not None
        if values is None:
            if existed is not False:
                self._conn.execute(delete(table).where(*where))
            return
        if existed is not False:
            result = self._conn.execute(update(table).where(*where).values(**values))
            if result.rowcount:
                return
        key_columns = [column.name for column in table.primary_key.columns]
        self._conn.execute(
            insert(table).values(**dict(zip(key_columns, key, strict=True)), **values)
        )

    def forget_transactions_before(self, block_ts: int) -> None:
        """Drop dedup entries of blocks made before ``block_ts`` (outside any dedup window)."""
        self._conn.execute(delete(dedup_table).where(dedup_table.c.block_ts < block_ts))

    def _set_balance(self, account: Account, amount: int) -> None:
        key = account_key(account)
        where = (balances_table.c.owner == key[0], balances_table.c.subaccount == key[1])
        self._upsert(balances_table, key, where, {"amount": amount} if amount else None)

    def _set_allowance(
        self, account: Account, spender: Account, allowance: StoredAllowance | None
    ) -> None:
        values = None
        if allowance is not None:
            values = {
                "amount": allowance.amount,
                "expires_at": _encode_nat64(allowance.expires_at),
                "arrived_at": allowance.arrived_at,
            }
        key = account_key(account) + account_key(spender)
        self._upsert(allowances_table, key, _allowance_where(account, spender), values)


def _encode_block(block: Block) -> str:
    return encode_value(block.to_value())


def _make_engine(url: str | URL, engine_kwargs: dict[str, Any]) -> Engine:
    url = make_url(url)
    if url.get_backend_name() != "sqlite":
        engine_kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **engine_kwargs)
    in_memory = url.database in (None, "", ":memory:")
    connect_args = engine_kwargs.setdefault("connect_args", {})
    connect_args.setdefault("check_same_thread", False)
    if in_memory:
        engine_kwargs.setdefault("poolclass", StaticPool)
    engine = create_engine(url, **engine_kwargs)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite, so BEGIN IMMEDIATE is ours to emit.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 30000")
        if not in_memory:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        writing = conn.get_execution_options().get(_WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

    return engine


class LedgerStore:
    """Owns the ledger's engine and tables.

    ``url`` is ``sqlite:///PATH``, ``sqlite://`` (in memory) or ``postgresql+psycopg://...``;
    ``engine_kwargs`` go to :func:`sqlalchemy.create_engine` (e.g. ``pool_size``).
    """

    def __init__(self, url: str | URL, *, create: bool = True, **engine_kwargs: Any) -> None:
        self._engine = _make_engine(url, dict(engine_kwargs))
        self._sqlite = self._engine.dialect.name == "sqlite"
        # One process-wide writer at a time on SQLite (the in-memory database is one connection).
        self._sqlite_lock = threading.RLock()
        if create:
            with self._translate():
                create_schema(self._engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def close(self) -> None:
        self._engine.dispose()

    def _guard(self) -> AbstractContextManager[Any]:
        return self._sqlite_lock if self._sqlite else nullcontext()

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except (OperationalError, InterfaceError) as exc:
            raise Unavailable("the ledger database is unavailable; retry later") from exc
        except IntegrityError as exc:
            raise Conflict("a concurrent ledger write conflicted; retry") from exc

    @contextmanager
    def read(self) -> Iterator[StoreReader]:
        """A read-only transaction that sees one consistent snapshot."""
        with self._guard(), self._translate(), self._engine.connect() as conn:
            if not self._sqlite:
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield StoreReader(conn)

    @contextmanager
    def write(self) -> Iterator[StoreWriter]:
        """A write transaction holding the tip lock; commits when the block exits normally."""
        with self._guard(), self._translate(), self._engine.connect() as conn:
            conn.execution_options(**{_WRITE_OPTION: True})
            if not self._sqlite:
                # After the tip lock, each statement must see the latest commit.
                conn.execution_options(isolation_level="READ COMMITTED")
            with conn.begin():
                writer = StoreWriter(conn)
                writer.lock_tip()
                yield writer
