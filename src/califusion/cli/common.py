"""What every CLI command shares: where things live, unlocking the keystore, printing errors."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from califusion.agent.client import CoordinatorClient
from califusion.agent.escrow_client import HttpEscrowAPI
from califusion.agent.ledger_client import HttpLedgerAPI
from califusion.core.errors import CaliFusionError, NotFound
from califusion.crypto.identity import Identity
from califusion.crypto.keystore import load_keystore
from califusion.protocol import JobSpec

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_COORDINATOR = "http://127.0.0.1:8470"
PASSPHRASE_ENV = "CALIFUSION_PASSPHRASE"  # noqa: S105 - the name of a variable, not a secret


def califusion_home() -> Path:
    """``$CALIFUSION_HOME``, by default ``~/.califusion``: keystores and agents' local state."""
    return Path(os.environ.get("CALIFUSION_HOME") or Path.home() / ".califusion")


CoordinatorOpt = Annotated[
    str,
    typer.Option("--coordinator", envvar="CALIFUSION_COORDINATOR", help="Coordinator base URL."),
]
KeystoreOpt = Annotated[
    Path | None,
    typer.Option(
        "--keystore",
        envvar="CALIFUSION_KEYSTORE",
        help="Keystore file (default $CALIFUSION_HOME/identity.json).",
    ),
]
PassphraseEnvOpt = Annotated[
    str,
    typer.Option(
        "--passphrase-env",
        help="Name of an environment variable holding the passphrase (else you are asked).",
    ),
]


LedgerUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--ledger",
        envvar="CALIFUSION_LEDGER",
        help="Base URL serving /ledger/v1 and /escrow/v1 [default: the coordinator's].",
    ),
]


def has_money(spec: JobSpec) -> bool:
    """Whether a job moves tokens (a reward pool, stakes or a price): then its agents pay."""
    return spec.reward_pool > 0 or spec.stake > 0 or spec.price is not None


@dataclass
class Money:
    """One identity's signed connections to the ledger and its escrow."""

    ledger: HttpLedgerAPI
    escrow: HttpEscrowAPI

    def close(self) -> None:
        self.ledger.close()
        self.escrow.close()

    def __enter__(self) -> Money:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def money(identity: Identity, ledger: str | None, coordinator: str) -> Money:
    """The ledger and escrow at ``ledger`` (default: the coordinator serves them), as
    ``identity``; NotFound if nothing serves an escrow there."""
    found = find_money(identity, ledger, coordinator)
    if found is None:
        raise _no_escrow(ledger or coordinator)
    return found


def _no_escrow(base: str) -> NotFound:
    return NotFound(
        f"{base} serves no escrow (/escrow/v1): start the coordinator with its ledger (the "
        "default of `califusion coordinator serve`), or pass --ledger with the URL of "
        "`califusion ledger serve`"
    )


def find_money(
    identity: Identity, ledger: str | None, coordinator: str, *, quiet: bool = False
) -> Money | None:
    """:func:`money`, or None (with a warning unless ``quiet``) when the coordinator serves no
    escrow (run with ``--no-ledger``, it moves no money); a ``--ledger`` that serves none is an
    error."""
    base = ledger or coordinator
    found = Money(HttpLedgerAPI(base, identity), HttpEscrowAPI(base, identity))
    try:
        found.escrow.status("probe")
    except NotFound:
        found.close()
        if ledger is not None:
            raise _no_escrow(ledger) from None
        if not quiet:
            err_console.print(
                f"[yellow]warning:[/] {base} serves no ledger or escrow: this job's reward pool, "
                "stakes and price are not enforced (pass --ledger URL for a ledger served "
                "elsewhere)",
                highlight=False,
            )
        return None
    return found


def unlock(keystore: Path | None, passphrase_env: str = PASSPHRASE_ENV) -> Identity:
    path = keystore or califusion_home() / "identity.json"
    if not path.exists():
        raise CaliFusionError(
            f"no keystore at {path}: create one with `califusion id new --keystore {path}`"
        )
    passphrase = os.environ.get(passphrase_env)
    if passphrase is None:
        passphrase = typer.prompt(f"Passphrase for {path}", hide_input=True)
    return load_keystore(path, passphrase)


def connect(coordinator: str, identity: Identity) -> CoordinatorClient:
    """A client for ``identity``, registered with the coordinator (registration is idempotent)."""
    client = CoordinatorClient(coordinator, identity)
    client.register()
    return client


def friendly_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Print a CaliFusionError as one line saying what was wrong, and exit 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except CaliFusionError as exc:
            err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
            for key, value in exc.detail.items():
                err_console.print(f"  {key}: {value}", highlight=False)
            sys.exit(1)

    return wrapper
