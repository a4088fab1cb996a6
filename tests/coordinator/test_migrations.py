"""The Alembic migrations create exactly the ORM's schema, on both backends."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from califusion.coordinator.db import Base, make_engine, upgrade_database
from califusion.coordinator.db.migrate import alembic_config

TABLES = {
    "principals",
    "jobs",
    "members",
    "rounds",
    "updates",
    "nonces",
    "secagg_sessions",
    "secagg_events",
    "model_offers",
    "model_grants",
    "alembic_version",
}


def _diff(url: str) -> list[Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def test_migrations_match_the_orm(database_url: str) -> None:
    upgrade_database(database_url)
    assert _diff(database_url) == []
    engine = make_engine(database_url)
    try:
        assert set(inspect(engine).get_table_names()) == TABLES
    finally:
        engine.dispose()


def test_upgrade_is_idempotent_and_at_head(database_url: str) -> None:
    upgrade_database(database_url)
    upgrade_database(database_url)
    head = ScriptDirectory.from_config(alembic_config(database_url)).get_current_head()
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            assert MigrationContext.configure(connection).get_current_revision() == head
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    upgrade_database(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        engine.dispose()
