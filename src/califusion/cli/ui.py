"""`califusion ui`: the local dashboard for this machine's user, in the browser.

The keystore is unlocked once, here; the dashboard process signs every coordinator request
itself, so the browser never holds a key. It listens on 127.0.0.1 only and prints a launch URL
with a one-session secret token: open that URL (and share it with nobody).

The money pages talk to the ledger at ``--ledger`` (default: the coordinator, which serves
``/ledger/v1`` and the escrow's ``/escrow/v1`` unless it runs with ``--no-ledger``); where the
escrow is served, the dashboard funds reward pools, stakes, signs round statements, sells and
buys models through it, and without one its jobs move no money. ``--ledger-key`` names the
ledger operator's keystore (only its public key is read) or its Ed25519 public key in hex: the
explorer then checks the ledger's signed tip certificate against it. Without it, the operator
keystore of this machine's ``$CALIFUSION_HOME`` is used when there is one.
"""

from __future__ import annotations

import socket
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from califusion.cli.common import (
    DEFAULT_COORDINATOR,
    PASSPHRASE_ENV,
    CoordinatorOpt,
    KeystoreOpt,
    PassphraseEnvOpt,
    califusion_home,
    friendly_errors,
    unlock,
)
from califusion.cli.jobs import agent_state_dir
from califusion.core.errors import InvalidInput, Unavailable
from califusion.crypto.keystore import read_keystore_info, read_public
from califusion.ledger.setup import OPERATOR_KEYSTORE
from califusion.web import Dashboard, DashboardConfig

__all__ = ["ui"]

DEFAULT_PORT = 8471


def _listen(port: int) -> socket.socket:
    """Bind 127.0.0.1:port now (0 picks a free port), so the printed URL is the real one."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        raise Unavailable(
            f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); choose another --port"
        ) from exc
    sock.listen(128)
    return sock


def _ledger_key(given: str | None) -> bytes | None:
    """The operator's public key: from a keystore path or 64 hex digits; else this machine's."""
    if given is None:
        local = califusion_home() / OPERATOR_KEYSTORE
        return read_public(local).signing_public if local.is_file() else None
    text = given.strip()
    if len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text):
        return bytes.fromhex(text)
    path = Path(text).expanduser()
    if not path.is_file():
        raise InvalidInput(
            f"--ledger-key {given!r}: give the ledger operator's keystore file (its public key is "
            "read, no passphrase needed) or its Ed25519 public key as 64 hex digits"
        )
    return read_public(path).signing_public


@friendly_errors
def ui(
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Local port; 0 picks a free one.")
    ] = DEFAULT_PORT,
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    ledger: Annotated[
        str | None,
        typer.Option(
            "--ledger",
            envvar="CALIFUSION_LEDGER",
            help="Base URL serving /ledger/v1 and /escrow/v1 (default: the coordinator).",
        ),
    ] = None,
    ledger_key: Annotated[
        str | None,
        typer.Option(
            "--ledger-key",
            help="The ledger operator's keystore file or public key (hex), trusted to sign the "
            "ledger's tip (default: $CALIFUSION_HOME/ledger-operator.json if present).",
        ),
    ] = None,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
    name: Annotated[
        str | None, typer.Option(help="Name shown to others (default: the keystore's name).")
    ] = None,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the dashboard in your browser.")
    ] = False,
) -> None:
    """Serve the dashboard for this keystore's identity on 127.0.0.1."""
    path: Path = keystore or califusion_home() / "identity.json"
    identity = unlock(path, passphrase_env)
    display_name = name if name is not None else (read_keystore_info(path).name or "")
    trusted_key = _ledger_key(ledger_key)
    sock = _listen(port)
    config = DashboardConfig(
        coordinator_url=coordinator,
        state_dir=agent_state_dir(identity),
        port=int(sock.getsockname()[1]),
        display_name=display_name,
        ledger_url=ledger,
        ledger_public_key=trusted_key,
    )
    dashboard = Dashboard(identity, config)
    typer.echo(f"CaliFusion dashboard for {identity.principal.to_text()}", err=True)
    typer.echo(f"coordinator {coordinator}; local state in {config.state_dir}", err=True)
    typer.echo(f"ledger {config.ledger_base_url}", err=True)
    typer.echo("Open this link (it signs you in; keep it to yourself):", err=True)
    typer.echo(dashboard.launch_url)
    if open_browser:
        webbrowser.open(dashboard.launch_url)
    server = uvicorn.Server(
        uvicorn.Config(
            dashboard.app,
            log_level="warning",
            access_log=False,  # the launch URL's token must not end up in a log
            lifespan="on",
            server_header=False,
        )
    )
    server.run(sockets=[sock])
