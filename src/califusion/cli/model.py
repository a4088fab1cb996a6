"""`califusion model …`: sell a completed job's model (publisher) and buy it (buyer).

Paying is one ICRC-1 transfer of the price to the job's escrow account with the job's buy memo;
``model buy`` checks the job, registers the buyer with the coordinator (so the publisher can wrap
the model key to it) and makes that transfer with ``--ledger-database-url`` on the ledger's own
machine, or prints it for any ICRC-1 wallet. The publisher's agent wraps the key once the ledger
shows the payment (``model grant``); then ``model download`` fetches and decrypts the model.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from califusion.agent.buyer import BuyerAgent
from califusion.agent.payments import check_escrow
from califusion.agent.payments_sales import ModelSeller
from califusion.cli.common import (
    DEFAULT_COORDINATOR,
    PASSPHRASE_ENV,
    CoordinatorOpt,
    KeystoreOpt,
    PassphraseEnvOpt,
    connect,
    console,
    friendly_errors,
    unlock,
)
from califusion.cli.jobs import publisher
from califusion.core.errors import Conflict, InvalidInput
from califusion.ledger.escrow_api import open_escrow_reader
from califusion.ledger.escrow_ids import DepositKind, deposit_memo, escrow_account
from califusion.protocol.payout import format_tokens

app = typer.Typer(help="Sell and buy access to trained models.", no_args_is_help=True)

LedgerDbOpt = Annotated[
    str | None,
    typer.Option(
        "--ledger-database-url",
        envvar="CALIFUSION_LEDGER_DATABASE_URL",
        help="The embedded ledger's database, to read the job's escrow.",
    ),
]


@app.command()
@friendly_errors
def buy(
    job_id: str,
    ledger_database_url: LedgerDbOpt = None,
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Check a model is on sale and show the one transfer that buys it."""
    identity = unlock(keystore, passphrase_env)
    with connect(coordinator, identity) as client:
        with contextlib.suppress(Conflict):
            client.register("buyer")  # the publisher wraps the model key to our agreement key
        job, price = BuyerAgent(client).check(job_id)
        client.model_offer(job_id)  # NotFound until the publisher offers it
    if ledger_database_url is not None:
        reader = open_escrow_reader(ledger_database_url)
        try:
            status = check_escrow(job, reader.status(job_id))
        finally:
            reader.close()
        if status.has_paid(identity.principal):
            console.print(
                f"you paid for {job_id} already (block {status.purchases[identity.principal]})"
            )
            return
    table = Table("field", "value", title=f"pay {format_tokens(price)} for the model of {job_id}")
    table.add_row("from", identity.principal.to_text())
    table.add_row("to", escrow_account(job_id).to_text())
    table.add_row("amount", f"{price} ({format_tokens(price)})")
    table.add_row("memo", deposit_memo(job_id, DepositKind.BUY).hex())
    console.print(table)
    console.print(
        "Make this ICRC-1 transfer from your wallet. Once the ledger shows it the publisher's "
        f"agent wraps the model key to you: then `califusion model download {job_id}`. "
        "A second payment is refunded by the escrow, less the ledger fee."
    )


@app.command()
@friendly_errors
def download(
    job_id: str,
    out: Annotated[Path, typer.Option(help="Where to write the decrypted model.")] = Path(
        "model.safetensors"
    ),
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Fetch the model you paid for, unwrap its key, decrypt it and write it as safetensors."""
    if out.exists():
        raise InvalidInput(f"{out} exists; choose another --out")
    with connect(coordinator, unlock(keystore, passphrase_env)) as client:
        agent = BuyerAgent(client)
        agent.model(job_id)  # checks the weights against the job's model spec
        out.write_bytes(agent.model_bytes(job_id))
    console.print(f"model of {job_id} written to {out}")


@app.command()
@friendly_errors
def offer(
    job_id: str,
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Publisher: offer a completed job's final model, sealed under a fresh model key."""
    agent = publisher(coordinator, keystore, passphrase_env)
    with agent.client:
        made = ModelSeller(agent).offer(job_id)
    console.print(f"model of {job_id} on offer as blob {made.model}")


@app.command()
@friendly_errors
def grant(
    job_id: str,
    ledger_database_url: LedgerDbOpt = None,
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Publisher: wrap the model key to every buyer whose payment the escrow shows."""
    if ledger_database_url is None:
        raise InvalidInput("--ledger-database-url is required: who paid is the ledger's fact")
    agent = publisher(coordinator, keystore, passphrase_env)
    reader = open_escrow_reader(ledger_database_url)
    with agent.client:
        try:
            granted = ModelSeller(agent, reader).grant_paid(job_id)
        finally:
            reader.close()
    console.print(f"model key of {job_id} wrapped to {len(granted)} new buyer(s)")
