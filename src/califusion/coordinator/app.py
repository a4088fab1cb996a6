"""The composition root of one coordinator process: ``create_app(settings)``.

Nothing here is module-level state: each call builds its own engine, blob store, services and
background ticker, so tests run many apps side by side. Starting the app (its lifespan) brings
the database schema up to date and starts the ticker that applies round deadlines.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import anyio.to_thread
from fastapi import FastAPI

from califusion.coordinator.admission import AdmissionPolicy, OpenAdmission
from califusion.coordinator.db.engine import Database
from califusion.coordinator.db.migrate import upgrade_engine
from califusion.coordinator.deps import Coordinator
from califusion.coordinator.limits import BodyLimitMiddleware
from califusion.coordinator.problems import install_problem_handlers
from califusion.coordinator.routes import ROUTERS
from califusion.coordinator.services import JobService, PrincipalService, RoundService
from califusion.core.clock import Clock, SystemClock
from califusion.core.settings import CoordinatorSettings
from califusion.storage.blobs import BlobStore
from califusion.storage.local import LocalBlobStore

log = logging.getLogger(__name__)


def build_coordinator(
    settings: CoordinatorSettings,
    *,
    clock: Clock | None = None,
    admission: AdmissionPolicy | None = None,
    blobs: BlobStore | None = None,
) -> Coordinator:
    """Wire the services (no I/O beyond creating the blob folder; the engine connects lazily)."""
    clock = clock if clock is not None else SystemClock()
    db = Database(settings.database_url)
    blobs = blobs if blobs is not None else LocalBlobStore(settings.blob_dir)
    return Coordinator(
        settings=settings,
        clock=clock,
        db=db,
        blobs=blobs,
        principals=PrincipalService(db, clock, window_s=settings.request_window_s),
        jobs=JobService(
            db,
            clock,
            blobs,
            admission if admission is not None else OpenAdmission(),
            max_wrapped_key_bytes=settings.max_wrapped_key_bytes,
        ),
        rounds=RoundService(db, clock, blobs),
    )


def tick(coordinator: Coordinator) -> None:
    """One pass of background work: apply passed deadlines, forget expired nonces."""
    changed = coordinator.rounds.tick()
    pruned = coordinator.principals.prune_nonces()
    if changed or pruned:
        log.info("tick", extra={"jobs_advanced": changed, "nonces_pruned": pruned})


async def _tick_until(coordinator: Coordinator, stopping: asyncio.Event) -> None:
    """Tick every ``tick_interval_s`` until ``stopping`` is set. A tick in progress is let
    finish (not cancelled), so shutdown never abandons a thread holding a connection."""
    while True:
        try:
            await asyncio.wait_for(stopping.wait(), timeout=coordinator.settings.tick_interval_s)
            return
        except TimeoutError:
            pass
        try:
            await anyio.to_thread.run_sync(tick, coordinator)
        except Exception:
            # Keep ticking: a database hiccup must not stop deadlines for good.
            log.exception("tick failed")


def create_app(
    settings: CoordinatorSettings,
    *,
    clock: Clock | None = None,
    admission: AdmissionPolicy | None = None,
    blobs: BlobStore | None = None,
) -> FastAPI:
    """A coordinator ASGI app. ``admission`` decides who may join (default: open while there is
    room); ``blobs`` replaces the local blob store (e.g. an S3 one)."""
    coordinator = build_coordinator(settings, clock=clock, admission=admission, blobs=blobs)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(upgrade_engine, coordinator.db.engine)
        stopping = asyncio.Event()
        ticker = asyncio.create_task(_tick_until(coordinator, stopping), name="califusion-ticker")
        log.info(
            "coordinator started",
            extra={
                "backend": coordinator.db.engine.dialect.name,
                "blob_dir": str(settings.blob_dir),
            },
        )
        try:
            yield
        finally:
            stopping.set()
            await ticker
            coordinator.db.dispose()
            log.info("coordinator stopped")

    app = FastAPI(
        title="CaliFusion coordinator",
        version="1",
        summary="Schedules federated-learning rounds over sealed models and updates.",
        lifespan=lifespan,
    )
    app.state.coordinator = coordinator
    install_problem_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_request_bytes=settings.max_request_bytes,
        max_blob_bytes=settings.max_blob_bytes,
    )
    for router in ROUTERS:
        app.include_router(router)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        """Liveness; unauthenticated."""
        return {"status": "ok"}

    return app
