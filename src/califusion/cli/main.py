"""The `califusion` command: the composition root that wires every part together."""

from __future__ import annotations

import logging

import typer

from califusion.cli import coordinator, data, demo, identity, jobs, model, trainer, ui, wallet
from califusion.cli import ledger as ledger_cli

app = typer.Typer(
    help="CaliFusion: confidential federated learning with escrowed payments.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(identity.app, name="id")
app.add_typer(coordinator.app, name="coordinator")
app.add_typer(jobs.app, name="job")
app.add_typer(trainer.app, name="trainer")
app.add_typer(data.app, name="data")
app.add_typer(model.app, name="model")
app.add_typer(ledger_cli.app, name="ledger")
app.add_typer(wallet.app, name="wallet")
app.command("demo")(demo.demo)
app.command("ui")(ui.ui)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    app()
