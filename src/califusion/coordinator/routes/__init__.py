"""HTTP routes: parse, authorize, call a service. No rules here."""

from califusion.coordinator.routes import access, blobs, jobs, principals, rounds, secagg

ROUTERS = (
    principals.router,
    blobs.router,
    jobs.router,
    rounds.router,
    access.router,
    secagg.router,
    secagg.coordinator_router,
)

__all__ = ["ROUTERS"]
