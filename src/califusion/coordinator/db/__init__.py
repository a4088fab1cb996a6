"""The coordinator's database: tables, engines, migrations and repositories."""

from califusion.coordinator.db.engine import Database, is_sqlite, make_engine
from califusion.coordinator.db.migrate import upgrade_database, upgrade_engine
from califusion.coordinator.db.models import (
    Base,
    JobRow,
    MemberRow,
    NonceRow,
    PrincipalRow,
    RoundRow,
    UpdateRow,
)

__all__ = [
    "Base",
    "Database",
    "JobRow",
    "MemberRow",
    "NonceRow",
    "PrincipalRow",
    "RoundRow",
    "UpdateRow",
    "is_sqlite",
    "make_engine",
    "upgrade_database",
    "upgrade_engine",
]
