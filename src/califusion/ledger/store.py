"""The ledger's SQL store: its own engine and tables, read and write transactions.

Tables (prefix ``ledger_``, see :mod:`califusion.ledger.schema`): ``blocks`` (index, hash,
parent hash, the block as canonical ICRC-3 JSON, and decoded columns for search), ``balances``
(non-zero balances only), ``allowances``, ``dedup`` (tx hash → block index, pruned after the
dedup window) and ``tip`` (one row: chain length, last hash and time, total supply).

Writers serialize on the tip row: on PostgreSQL ``SELECT ... FOR UPDATE`` on it is the first
statement of every write transaction (READ COMMITTED, so every later read sees the latest
commit), on SQLite the transaction starts with ``BEGIN IMMEDIATE``. Every write appends a block,
so every writer needs that row: writes run one at a time, in one order, with nothing else to
deadlock on. Errors of the database driver become :class:`~califusion.core.errors.Unavailable`.

Reads (:class:`~califusion.ledger.sql_read.StoreReader`) and batch writes
(:class:`~califusion.ledger.sql_write.BatchWriter`) live in their own modules.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Literal

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.pool import StaticPool

from califusion.core.errors import Conflict, Unavailable
from califusion.ledger.model import ChainTip
from califusion.ledger.schema import create_schema
from califusion.ledger.sql_read import StoredBlock, StoreReader
from califusion.ledger.sql_write import BatchWriter

__all__ = ["LedgerStore", "StoreReader", "StoredBlock"]

_WRITE_OPTION = "califusion_ledger_write"
SqliteSync = Literal["FULL", "NORMAL"]


def _make_engine(url: str | URL, engine_kwargs: dict[str, Any], synchronous: SqliteSync) -> Engine:
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
            # FULL: every commit is on disk before it returns (the WAL is synced per commit).
            # NORMAL survives a crash of the process but not of the machine.
            cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        writing = conn.get_execution_options().get(_WRITE_OPTION, False)
        # Straight to the driver: this runs once per transaction, on the ledger's hot path.
        driver = conn.connection.driver_connection
        assert driver is not None
        driver.execute("BEGIN IMMEDIATE" if writing else "BEGIN")

    return engine


class LedgerStore:
    """Owns the ledger's engine and tables.

    ``url`` is ``sqlite:///PATH``, ``sqlite://`` (in memory) or ``postgresql+psycopg://...``;
    ``engine_kwargs`` go to :func:`sqlalchemy.create_engine` (e.g. ``pool_size``).
    ``sqlite_synchronous`` is SQLite's durability: ``FULL`` (default) or ``NORMAL``.
    """

    def __init__(
        self,
        url: str | URL,
        *,
        create: bool = True,
        sqlite_synchronous: SqliteSync = "FULL",
        **engine_kwargs: Any,
    ) -> None:
        if sqlite_synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"sqlite_synchronous must be FULL or NORMAL, not {sqlite_synchronous}")
        self._engine = _make_engine(url, dict(engine_kwargs), sqlite_synchronous)
        self._sqlite = self._engine.dialect.name == "sqlite"
        database = self._engine.url.database
        self._in_memory = self._sqlite and database in (None, "", ":memory:")
        # One process-wide writer at a time on SQLite; an in-memory database is one connection,
        # so its readers take the lock too (a file in WAL mode lets readers run beside a writer).
        self._sqlite_lock = threading.RLock()
        # The writer keeps its connection between transactions (no pool checkout, liveness
        # ping or isolation reset per batch); one write transaction at a time uses it.
        self._writer_lock = threading.Lock()
        self._writer_conn: Connection | None = None
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
        with self._writer_lock:
            self._drop_writer_connection()
        self._engine.dispose()

    def _writer_connection(self) -> Connection:
        conn = self._writer_conn
        if conn is None or conn.closed or conn.invalidated:
            conn = self._engine.connect()
            conn.execution_options(**{_WRITE_OPTION: True})
            if not self._sqlite:
                # After the tip lock, each statement must see the latest commit.
                conn.execution_options(isolation_level="READ COMMITTED")
            if not self._in_memory:  # one shared connection: give it back after each use
                self._writer_conn = conn
        return conn

    def _drop_writer_connection(self) -> None:
        conn, self._writer_conn = self._writer_conn, None
        if conn is not None:
            conn.close()

    def _guard(self, *, writing: bool) -> AbstractContextManager[Any]:
        if self._in_memory or (writing and self._sqlite):
            return self._sqlite_lock
        return nullcontext()

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
        with self._guard(writing=False), self._translate(), self._engine.connect() as conn:
            if not self._sqlite:
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield StoreReader(conn)

    @contextmanager
    def write(self) -> Iterator[tuple[BatchWriter, ChainTip]]:
        """A write transaction holding the tip lock, and the tip it locked; commits when the
        block exits normally, rolls back when it raises."""
        with self._guard(writing=True), self._writer_lock, self._translate():
            conn = self._writer_connection()
            try:
                with conn.begin():
                    writer = BatchWriter(conn)
                    yield writer, writer.lock_tip()
            except BaseException:
                self._drop_writer_connection()  # it may be broken; the next batch reconnects
                raise
            finally:
                if conn is not self._writer_conn:
                    conn.close()
