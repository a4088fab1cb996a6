"""The coordinator's database: tables, engines, migrations and repositories."""

from califusion.coordinator.db.access_models import ModelGrantRow, ModelOfferRow
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
from califusion.coordinator.db.secagg_models import SecAggEventRow, SecAggSessionRow

__all__ = [
    "Base",
    "Database",
    "JobRow",
    "MemberRow",
    "ModelGrantRow",
    "ModelOfferRow",
    "NonceRow",
    "PrincipalRow",
    "RoundRow",
    "SecAggEventRow",
    "SecAggSessionRow",
    "UpdateRow",
    "is_sqlite",
    "make_engine",
    "upgrade_database",
    "upgrade_engine",
]
