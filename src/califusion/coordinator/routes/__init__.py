"""HTTP routes: parse, authorize, call a service. No rules here."""

from califusion.coordinator.routes import blobs, jobs, principals, rounds

ROUTERS = (principals.router, blobs.router, jobs.router, rounds.router)

__all__ = ["ROUTERS"]
