"""Bring a database to the newest schema with the Alembic migrations shipped in the package."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from califusion.coordinator.db.engine import make_engine

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# Any fixed number: several workers starting at once take turns to migrate (PostgreSQL).
_MIGRATION_LOCK_ID = 0x43_46_4D_49_47  # "CFMIG"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade_engine(engine: Engine) -> None:
    """Apply every pending migration through ``engine``; a no-op when the schema is current."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_ID})")
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    log.info("database schema is current", extra={"backend": engine.dialect.name})


def upgrade_database(url: str) -> None:
    """Apply every pending migration to the database at ``url``."""
    engine = make_engine(url)
    try:
        upgrade_engine(engine)
    finally:
        engine.dispose()
