"""``califusion id``: create, show and export identities kept in a keystore file.

The passphrase comes from the environment variable named by ``--passphrase-env`` (for scripts)
or is prompted for with hidden input. Commands print what a script needs on stdout (the
principal, the public identity JSON) and everything else on stderr.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from califusion.cli.common import PASSPHRASE_ENV, califusion_home
from califusion.core.errors import CaliFusionError, Conflict, InvalidInput
from califusion.crypto import (
    Identity,
    b64e,
    load_keystore,
    read_keystore_info,
    read_public,
    save_keystore,
)

app = typer.Typer(help="Create, show and export your CaliFusion identity.", no_args_is_help=True)

KeystoreOption = Annotated[
    Path | None,
    typer.Option(
        "--keystore",
        help="Keystore file [default: $CALIFUSION_HOME/identity.json, ~/.califusion/identity.json]",
        dir_okay=False,
    ),
]
PassphraseEnvOption = Annotated[
    str | None,
    typer.Option(
        "--passphrase-env",
        metavar="VAR",
        help="Read the passphrase from this environment variable instead of prompting "
        f"(default: {PASSPHRASE_ENV} when it is set).",
    ),
]


def default_keystore_path() -> Path:
    """``$CALIFUSION_HOME/identity.json``; CALIFUSION_HOME defaults to ``~/.califusion``."""
    return califusion_home() / "identity.json"


@contextmanager
def _user_errors() -> Iterator[None]:
    """Print a CaliFusionError as ``error: <message>`` and exit 1, without a traceback."""
    try:
        yield
    except CaliFusionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None


def _passphrase(env_var: str | None, *, confirm: bool) -> str:
    if env_var is None and os.environ.get(PASSPHRASE_ENV):
        env_var = PASSPHRASE_ENV
    if env_var is not None:
        value = os.environ.get(env_var)
        if not value:
            raise InvalidInput(f"environment variable {env_var} is not set or empty")
        return value
    value = typer.prompt("Passphrase", hide_input=True, confirmation_prompt=confirm)
    if not isinstance(value, str) or not value:
        raise InvalidInput("the passphrase must not be empty")
    return value


@app.command()
def new(
    keystore: KeystoreOption = None,
    name: Annotated[str | None, typer.Option(help="A label stored with the keys.")] = None,
    passphrase_env: PassphraseEnvOption = None,
) -> None:
    """Create a new identity in a new keystore and print its principal."""
    with _user_errors():
        path = keystore if keystore is not None else default_keystore_path()
        if path.exists():
            raise Conflict(f"keystore {path} already exists; refusing to overwrite it")
        passphrase = _passphrase(passphrase_env, confirm=True)
        identity = Identity.generate()
        save_keystore(path, identity, passphrase, name=name)
        typer.echo(f"created keystore {path}", err=True)
        typer.echo(identity.principal.to_text())


@app.command()
def show(
    keystore: KeystoreOption = None,
    check: Annotated[
        bool, typer.Option("--check", help="Ask for the passphrase and check it unlocks the keys.")
    ] = False,
    passphrase_env: PassphraseEnvOption = None,
) -> None:
    """Show the principal, public keys and name of a keystore (no passphrase needed)."""
    with _user_errors():
        path = keystore if keystore is not None else default_keystore_path()
        info = read_keystore_info(path)
        typer.echo(f"principal:        {info.public.principal}")
        typer.echo(f"name:             {info.name if info.name is not None else '-'}")
        typer.echo(f"signing public:   {b64e(info.public.signing_public)}")
        typer.echo(f"agreement public: {b64e(info.public.agreement_public)}")
        typer.echo(f"keystore:         {path}")
        if check:
            load_keystore(path, _passphrase(passphrase_env, confirm=False))
            typer.echo("passphrase:       ok")


@app.command("export-public")
def export_public(
    keystore: KeystoreOption = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", dir_okay=False, help="Write here instead of standard output."),
    ] = None,
) -> None:
    """Write the public identity as JSON, for registration or sharing."""
    with _user_errors():
        path = keystore if keystore is not None else default_keystore_path()
        text = json.dumps(read_public(path).to_dict(), indent=2) + "\n"
        if out is None:
            typer.echo(text, nl=False)
        else:
            try:
                out.write_text(text, encoding="utf-8")
            except OSError as exc:
                raise InvalidInput(f"cannot write {out}: {exc.strerror}") from exc
            typer.echo(f"wrote {out}", err=True)
