"""The dashboard's routes, one module per area: session, publisher, jobs, trainer, wallet,
explorer."""

from califusion.web.routes import explorer, jobs, publisher, session, trainer, wallet

__all__ = ["explorer", "jobs", "publisher", "session", "trainer", "wallet"]
