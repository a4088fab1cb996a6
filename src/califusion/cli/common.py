"""What every CLI command shares: where things live, unlocking the keystore, printing errors."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from califusion.agent.client import CoordinatorClient
from califusion.core.errors import CaliFusionError
from califusion.crypto.identity import Identity
from califusion.crypto.keystore import load_keystore

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
