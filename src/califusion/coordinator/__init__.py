"""coordinator layer: the HTTP service that schedules jobs and rounds.

``create_app(settings)`` builds an app; ``serve(settings)`` runs one; the rules live in
``lifecycle`` (pure functions) and ``services``, the SQL in ``db``.
"""

from califusion.coordinator.admission import AdmissionPolicy, JoinRequest, OpenAdmission
from califusion.coordinator.app import build_coordinator, create_app, tick
from califusion.coordinator.db import Database, upgrade_database
from califusion.coordinator.server import serve

__all__ = [
    "AdmissionPolicy",
    "Database",
    "JoinRequest",
    "OpenAdmission",
    "build_coordinator",
    "create_app",
    "serve",
    "tick",
    "upgrade_database",
]
