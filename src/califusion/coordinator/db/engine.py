"""Engines and transactions, for SQLite (embedded default) and PostgreSQL (several workers).

SQLite gets WAL (readers do not block the writer), foreign keys, a busy timeout and
``BEGIN IMMEDIATE`` for every transaction: a transaction that reads a job and then writes it
holds the write lock from its first statement, so two workers can never interleave a
read-modify-write. PostgreSQL serializes the same work with ``SELECT ... FOR UPDATE`` on the
job row (see the repositories).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.orm.exc import StaleDataError

from califusion.core.errors import Conflict, Unavailable

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 10_000


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def make_engine(url: str) -> Engine:
    """An engine for ``url``, with the per-backend settings described above."""
    if not is_sqlite(url):
        return create_engine(url, pool_pre_ping=True)
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module, so BEGIN is ours (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class Database:
    """An engine and its sessions. ``with db.transaction() as session:`` is one unit of work:
    committed if the block ends normally, rolled back if it raises."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        try:
            with self._sessions.begin() as session:
                yield session
        except OperationalError as exc:
            log.error("database unavailable", extra={"error": type(exc.orig).__name__})
            raise Unavailable("the coordinator's database is unavailable; retry later") from exc
        except StaleDataError as exc:
            # The version compare-and-set lost: another worker changed the job meanwhile.
            raise Conflict("the job was changed by another request; retry") from exc

    def dispose(self) -> None:
        self.engine.dispose()
