"""`califusion coordinator serve`: run the coordinator service, with the ledger and its escrow.

By default the coordinator also serves the embedded ledger (``/ledger/v1``) and its escrow
(``/escrow/v1``), so one process is all a marketplace needs: the ledger's database is
``ledger.db`` beside the coordinator's (or ``--ledger-database-url``, e.g. PostgreSQL), and the
ledger operator's keystore (its account mints, its key signs tip certificates) is
``$CALIFUSION_HOME/ledger-operator.json`` — created on first start if absent. Its passphrase
comes from ``CALIFUSION_LEDGER_OPERATOR_PASSPHRASE``, else from the variable the ledger commands
read (``--passphrase-env``, default ``CALIFUSION_PASSPHRASE``), else it is asked for on a
terminal; without any of them the command stops and says what to set.

``--ledger-url URL`` points at a standalone ``califusion ledger serve`` instead: the coordinator
then serves no ledger and checks funding and stakes by reading that ledger's escrow over HTTP.
``--no-ledger`` runs without money: every job is free, anyone registered may join.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from califusion.cli.common import PASSPHRASE_ENV, califusion_home, console, friendly_errors
from califusion.core.errors import InvalidInput

app = typer.Typer(help="Run the coordinator service.", no_args_is_help=True)

OPERATOR_PASSPHRASE_ENV = "CALIFUSION_LEDGER_OPERATOR_PASSPHRASE"  # noqa: S105 - a name


def ledger_url_beside(database_url: str, home: Path) -> str:
    """The embedded ledger's default database: ``ledger.db`` beside a SQLite coordinator
    database, else in the coordinator's folder."""
    if database_url.startswith("sqlite:///"):
        folder = Path(database_url.removeprefix("sqlite:///")).parent
        return f"sqlite:///{folder / 'ledger.db'}"
    return f"sqlite:///{home / 'ledger.db'}"


def operator_passphrase(keystore: Path, passphrase_env: str, *, creating: bool) -> str:
    """The ledger operator's passphrase: from the environment, else asked on a terminal."""
    for name in (OPERATOR_PASSPHRASE_ENV, passphrase_env):
        value = os.environ.get(name)
        if value:
            return value
    if sys.stdin.isatty():
        doing = "the new" if creating else "the"
        value = typer.prompt(
            f"Passphrase for {doing} ledger operator keystore {keystore}",
            hide_input=True,
            confirmation_prompt=creating,
        )
        if isinstance(value, str) and value:
            return value
    verb = "create" if creating else "unlock"
    raise InvalidInput(
        f"the coordinator serves the ledger and needs to {verb} its operator keystore "
        f"{keystore}: set {OPERATOR_PASSPHRASE_ENV} (or {passphrase_env}) to its passphrase, "
        "point at a ledger served elsewhere with --ledger-url, or run with --no-ledger"
    )


@app.command()
@friendly_errors
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8470,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL (default SQLite under $CALIFUSION_HOME).")
    ] = None,
    blob_dir: Annotated[Path | None, typer.Option(help="Folder for encrypted blobs.")] = None,
    no_ledger: Annotated[
        bool, typer.Option("--no-ledger", help="Serve no ledger and check no money.")
    ] = False,
    ledger_url: Annotated[
        str | None,
        typer.Option(
            "--ledger-url",
            help="Base URL of a standalone `califusion ledger serve`: check funding and stakes "
            "in its escrow instead of serving a ledger here.",
        ),
    ] = None,
    ledger_database_url: Annotated[
        str | None,
        typer.Option(
            "--ledger-database-url",
            envvar="CALIFUSION_LEDGER_DATABASE_URL",
            help="The served ledger's database [default: ledger.db beside the coordinator's].",
        ),
    ] = None,
    ledger_operator: Annotated[
        Path | None,
        typer.Option(
            "--ledger-operator",
            envvar="CALIFUSION_LEDGER_OPERATOR_KEYSTORE",
            help="The ledger operator's keystore, created if absent "
            "[default: $CALIFUSION_HOME/ledger-operator.json].",
        ),
    ] = None,
    passphrase_env: Annotated[
        str,
        typer.Option(
            "--passphrase-env",
            help=f"Variable holding the operator's passphrase when {OPERATOR_PASSPHRASE_ENV} "
            "is unset.",
        ),
    ] = PASSPHRASE_ENV,
) -> None:
    """Serve the coordinator API (OpenAPI docs at /docs), the ledger and the escrow."""
    # imported here: the service stack is heavy and every other command starts faster without it
    from pydantic import SecretStr  # noqa: PLC0415

    from califusion.agent.escrow_client import HttpEscrowAPI  # noqa: PLC0415
    from califusion.cli.ledger import default_operator_keystore  # noqa: PLC0415
    from califusion.coordinator import serve as serve_coordinator  # noqa: PLC0415
    from califusion.coordinator.admission import AdmissionPolicy, StakeAdmission  # noqa: PLC0415
    from califusion.core.settings import CoordinatorSettings  # noqa: PLC0415
    from califusion.crypto.identity import Identity  # noqa: PLC0415
    from califusion.crypto.keystore import save_keystore  # noqa: PLC0415
    from califusion.ledger.setup import unlock_operator  # noqa: PLC0415

    if no_ledger and ledger_url is not None:
        raise InvalidInput("--no-ledger and --ledger-url contradict each other: choose one")
    home = califusion_home() / "coordinator"
    home.mkdir(parents=True, exist_ok=True)
    url = database_url or f"sqlite:///{home / 'coordinator.db'}"
    ledger_db: str | None = None
    keystore: Path | None = None
    passphrase: str | None = None
    admission: AdmissionPolicy | None = None
    where = "no ledger: jobs move no money"
    if ledger_url is not None:
        # Reads of the escrow are public; a throwaway key signs them.
        admission = StakeAdmission(HttpEscrowAPI(ledger_url, Identity.generate()))
        where = f"funding and stakes checked in the escrow at {ledger_url.rstrip('/')}/escrow/v1"
    elif not no_ledger:
        keystore = ledger_operator or default_operator_keystore()
        creating = not keystore.exists()
        passphrase = operator_passphrase(keystore, passphrase_env, creating=creating)
        if creating:
            save_keystore(keystore, Identity.generate(), passphrase, name="ledger operator")
            console.print(f"created the ledger operator keystore {keystore}", highlight=False)
        operator = unlock_operator(keystore, passphrase)  # a wrong passphrase stops us here
        ledger_db = ledger_database_url or ledger_url_beside(url, home)
        if ledger_db.startswith("sqlite:///"):
            Path(ledger_db.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        where = (
            f"ledger {ledger_db} at http://{host}:{port}/ledger/v1, escrow at /escrow/v1; "
            f"minting account {operator.principal} (keystore {keystore})"
        )
    settings = CoordinatorSettings(
        home=home,  # its key (coordinator-identity.pem) is made here on first start
        host=host,
        port=port,
        database_url=url,
        blob_dir=blob_dir or home / "blobs",
        ledger_database_url=ledger_db,
        ledger_operator_keystore=keystore,
        ledger_operator_passphrase=SecretStr(passphrase) if passphrase is not None else None,
    )
    console.print(where, highlight=False, soft_wrap=True)
    serve_coordinator(settings, admission=admission)
