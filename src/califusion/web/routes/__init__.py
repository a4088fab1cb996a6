"""The dashboard's routes, one module per area: session, publisher, jobs, trainer."""

from califusion.web.routes import jobs, publisher, session, trainer

__all__ = ["jobs", "publisher", "session", "trainer"]
