"""``califusion ledger``: run the embedded ledger on its own, and check one.

- ``init``   create the operator keystore (whose account mints) and the ledger's database;
- ``serve``  serve the ledger over HTTP (``/ledger/v1``) and its escrow (``/escrow/v1``: the
  escrow executor runs in this process and pays what falls due), one process per ledger;
- ``verify`` re-read every block of a ledger database, check the hash chain, recompute every
  balance, allowance and the total supply, and report each discrepancy (exit code 1).

By default the ledger's database is ``ledger.db`` beside the coordinator's
(``$CALIFUSION_HOME/coordinator/``), and the operator's keystore is
``$CALIFUSION_HOME/ledger-operator.json``. A coordinator serves the same ledger itself when it is
given ``CALIFUSION_LEDGER_DATABASE_URL`` and ``CALIFUSION_LEDGER_OPERATOR_KEYSTORE`` (with the
passphrase in ``CALIFUSION_LEDGER_OPERATOR_PASSPHRASE``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import anyio.to_thread
import typer
import uvicorn
from fastapi import FastAPI

from califusion.cli.common import PASSPHRASE_ENV, califusion_home, console, friendly_errors, unlock
from califusion.coordinator.limits import BodyLimitMiddleware
from califusion.coordinator.problems import install_problem_handlers
from califusion.coordinator.server import configure_logging
from califusion.core.clock import Clock, SystemClock
from califusion.core.errors import InvalidInput, NotFound
from califusion.core.settings import MIB
from califusion.crypto.identity import Identity
from califusion.crypto.keystore import save_keystore
from califusion.crypto.signing import DEFAULT_WINDOW_S
from califusion.ledger.escrow_executor import EscrowExecutor
from califusion.ledger.escrow_routes import escrow_router
from califusion.ledger.escrow_runner import DEFAULT_INTERVAL_S, EscrowRunner
from califusion.ledger.http_auth import SignedCallers
from califusion.ledger.http_routes import ledger_router
from califusion.ledger.service import Ledger
from califusion.ledger.setup import OPERATOR_KEYSTORE, open_ledger
from califusion.ledger.store import LedgerStore
from califusion.ledger.verify import verify_store

app = typer.Typer(help="Run or verify the embedded ICRC ledger.", no_args_is_help=True)

DEFAULT_PORT = 8471


def default_ledger_url() -> str:
    return f"sqlite:///{califusion_home() / 'coordinator' / 'ledger.db'}"


def default_operator_keystore() -> Path:
    return califusion_home() / OPERATOR_KEYSTORE


DatabaseOpt = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="CALIFUSION_LEDGER_DATABASE_URL",
        help="sqlite:///PATH or postgresql+psycopg://... "
        "[default: $CALIFUSION_HOME/coordinator/ledger.db]",
    ),
]
OperatorOpt = Annotated[
    Path | None,
    typer.Option(
        "--operator",
        envvar="CALIFUSION_LEDGER_OPERATOR_KEYSTORE",
        help="The operator's keystore: its account mints, its key signs tip certificates "
        "[default: $CALIFUSION_HOME/ledger-operator.json].",
    ),
]
PassphraseEnvOpt = Annotated[
    str,
    typer.Option("--passphrase-env", help="Variable holding the operator's passphrase."),
]


def create_ledger_app(
    ledger: Ledger,
    *,
    clock: Clock | None = None,
    window_s: float = DEFAULT_WINDOW_S,
    max_request_bytes: int = MIB,
    escrow: EscrowExecutor | None = None,
    escrow_interval_s: float | None = DEFAULT_INTERVAL_S,
) -> FastAPI:
    """A standalone ledger server: the ledger's routes, with the coordinator's problem bodies
    and body limit. Nonces live in memory (one process per ledger; see ``http_auth``).

    With ``escrow`` (the ledger's executor) the escrow is served at /escrow/v1 too, and while
    the app runs a background thread makes the payments that fall due (every
    ``escrow_interval_s``; None: no thread, the caller runs ``escrow.run_due()`` itself)."""
    callers = SignedCallers.in_memory(
        clock if clock is not None else SystemClock(), window_s=window_s
    )
    runner = None
    if escrow is not None and escrow_interval_s is not None:
        runner = EscrowRunner(escrow, interval_s=escrow_interval_s)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if runner is not None:
            runner.start()
        try:
            yield
        finally:
            if runner is not None:
                await anyio.to_thread.run_sync(runner.stop)

    api = FastAPI(
        title="CaliFusion ledger",
        version="1",
        summary="ICRC-1/2/3 and the escrow over HTTP.",
        lifespan=lifespan,
    )
    install_problem_handlers(api)
    api.add_middleware(BodyLimitMiddleware, max_request_bytes=max_request_bytes, max_blob_bytes=MIB)
    api.include_router(ledger_router(ledger, callers))
    if escrow is not None:
        api.state.escrow = escrow
        poke = runner.poke if runner is not None else None
        api.include_router(escrow_router(escrow, callers, on_change=poke))

    @api.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        """Liveness; unauthenticated."""
        return {"status": "ok"}

    return api


@app.command()
@friendly_errors
def init(
    operator: OperatorOpt = None,
    database_url: DatabaseOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Create the operator's keystore (if missing) and the ledger's tables; print the minting
    account."""
    path = operator or default_operator_keystore()
    if path.exists():
        identity = unlock(path, passphrase_env)
        console.print(f"operator keystore {path} exists", highlight=False)
    else:
        passphrase = _new_passphrase(passphrase_env)
        identity = Identity.generate()
        save_keystore(path, identity, passphrase, name="ledger operator")
        console.print(f"created operator keystore {path}", highlight=False)
    url = database_url or default_ledger_url()
    _ensure_folder(url)
    LedgerStore(url).close()
    console.print(f"ledger database {url}", highlight=False)
    print(identity.principal.to_text())


@app.command()
@friendly_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = DEFAULT_PORT,
    database_url: DatabaseOpt = None,
    operator: OperatorOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
) -> None:
    """Serve the ledger at http://HOST:PORT/ledger/v1 (OpenAPI docs at /docs)."""
    path = operator or default_operator_keystore()
    if not path.exists():
        raise NotFound(f"no operator keystore at {path}: create one with `califusion ledger init`")
    identity = unlock(path, passphrase_env)
    url = database_url or default_ledger_url()
    _ensure_folder(url)
    configure_logging(log_level)
    ledger = open_ledger(url, identity)
    try:
        console.print(
            f"ledger {url}\nminting account {identity.principal}\n"
            f"serving http://{host}:{port}/ledger/v1 and /escrow/v1",
            highlight=False,
        )
        api = create_ledger_app(ledger, escrow=EscrowExecutor(ledger))
        uvicorn.run(api, host=host, port=port, log_level=log_level)
    finally:
        ledger.close()


@app.command()
@friendly_errors
def verify(database_url: DatabaseOpt = None) -> None:
    """Re-read all blocks, check the hash chain, recompute balances and supply."""
    url = database_url or default_ledger_url()
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise NotFound(f"no ledger database at {url}")
    store = LedgerStore(url, create=False)
    try:
        report = verify_store(store)
    finally:
        store.close()
    if report.ok:
        tip = report.tip_hash.hex() if report.tip_hash is not None else "none"
        print(f"ok: {report.summary()}, {len(report.balances)} accounts, tip {tip}")
        return
    print(report.summary())
    sys.exit(1)


def _ensure_folder(url: str) -> None:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)


def _new_passphrase(passphrase_env: str) -> str:
    value = os.environ.get(passphrase_env)
    if value is None:
        value = typer.prompt(
            "Passphrase for the new keystore", hide_input=True, confirmation_prompt=True
        )
    if not isinstance(value, str) or not value:
        raise InvalidInput("the passphrase must not be empty")
    return value
