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

from califusion.coordinator.admission import AdmissionPolicy, OpenAdmission, StakeAdmission
from califusion.coordinator.db.engine import Database
from califusion.coordinator.db.migrate import upgrade_engine
from califusion.coordinator.deps import Coordinator
from califusion.coordinator.identity import load_or_create
from califusion.coordinator.limits import BodyLimitMiddleware
from califusion.coordinator.problems import install_problem_handlers
from califusion.coordinator.routes import ROUTERS
from califusion.coordinator.services import JobService, PrincipalService, RoundService
from califusion.coordinator.services.secagg import SecAggService
from califusion.core.clock import Clock, SystemClock
from califusion.core.settings import CoordinatorSettings
from califusion.ledger.escrow_api import EscrowReader, open_escrow_reader
from califusion.ledger.escrow_executor import EscrowExecutor
from califusion.ledger.escrow_routes import escrow_router
from califusion.ledger.escrow_runner import EscrowRunner
from califusion.ledger.http_auth import SignedCallers
from califusion.ledger.http_routes import ledger_router
from califusion.ledger.service import Ledger
from califusion.ledger.setup import ledger_for_coordinator
from califusion.storage import BlobStore, open_blob_store

log = logging.getLogger(__name__)


def build_coordinator(
    settings: CoordinatorSettings,
    *,
    clock: Clock | None = None,
    admission: AdmissionPolicy | None = None,
    blobs: BlobStore | None = None,
    escrow: EscrowReader | None = None,
) -> Coordinator:
    """Wire the services (no I/O beyond creating the blob folder or bucket and loading — on
    first start, creating — the coordinator's key; the engine connects lazily)."""
    clock = clock if clock is not None else SystemClock()
    db = Database(settings.database_url)
    if blobs is None:
        secret = settings.s3_secret_key
        blobs = open_blob_store(
            blob_dir=settings.blob_dir,
            blob_url=settings.blob_url,
            access_key=settings.s3_access_key,
            secret_key=secret.get_secret_value() if secret is not None else None,
        )
    passphrase = settings.identity_passphrase
    identity = load_or_create(
        settings.identity_file, passphrase.get_secret_value() if passphrase else None
    )
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
            admission if admission is not None else _default_admission(settings, escrow),
            max_wrapped_key_bytes=settings.max_wrapped_key_bytes,
        ),
        rounds=RoundService(db, clock, blobs),
        secagg=SecAggService(db, clock, blobs, identity),
    )


def _default_admission(
    settings: CoordinatorSettings, escrow: EscrowReader | None = None
) -> AdmissionPolicy:
    """Stakes and funding checked against the ledger's escrow when a ledger is configured:
    ``escrow`` when this process serves it, else a reader of ``ledger_database_url``."""
    if escrow is not None:
        return StakeAdmission(escrow)
    if settings.ledger_database_url is None:
        return OpenAdmission()
    return StakeAdmission(open_escrow_reader(settings.ledger_database_url))


def tick(coordinator: Coordinator) -> None:
    """One pass of background work: apply passed deadlines, forget expired nonces."""
    changed = coordinator.secagg.tick() + coordinator.rounds.tick()
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
    ledger: Ledger | None = None,
) -> FastAPI:
    """A coordinator ASGI app. ``admission`` decides who may join (default: open while there is
    room, and with stakes and funding checked when a ledger is configured); ``blobs`` replaces
    the store the settings name (``blob_url``, else ``blob_dir``); ``ledger`` is served at
    /ledger/v1 (default: the one the settings name, if any), with its escrow at /escrow/v1: this
    process then runs the escrow executor, and a background thread makes the payments due."""
    clock = clock if clock is not None else SystemClock()
    own_ledger = ledger is None
    if ledger is None:
        ledger = ledger_for_coordinator(settings, clock)
    runner: EscrowRunner | None = None
    if ledger is not None:
        runner = EscrowRunner(EscrowExecutor(ledger), interval_s=settings.escrow_interval_s)
    coordinator = build_coordinator(
        settings,
        clock=clock,
        admission=admission,
        blobs=blobs,
        escrow=runner.executor if runner is not None else None,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(upgrade_engine, coordinator.db.engine)
        stopping = asyncio.Event()
        ticker = asyncio.create_task(_tick_until(coordinator, stopping), name="califusion-ticker")
        if runner is not None:
            runner.start()
        log.info(
            "coordinator started",
            extra={
                "backend": coordinator.db.engine.dialect.name,
                "blobs": settings.blob_url or str(settings.blob_dir),
            },
        )
        try:
            yield
        finally:
            stopping.set()
            await ticker
            if runner is not None:
                await anyio.to_thread.run_sync(runner.stop)
            coordinator.db.dispose()
            if own_ledger and ledger is not None:
                ledger.close()
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
    if ledger is not None:
        app.state.ledger = ledger
        callers = SignedCallers(
            coordinator.principals.nonces, coordinator.clock, window_s=settings.request_window_s
        )
        app.include_router(ledger_router(ledger, callers))
        assert runner is not None
        app.state.escrow = runner.executor
        app.include_router(escrow_router(runner.executor, callers, on_change=runner.poke))

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        """Liveness; unauthenticated."""
        return {"status": "ok"}

    return app
