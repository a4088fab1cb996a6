"""`califusion model …`: sell a completed job's model (publisher) and buy it (buyer).

Paying is one ICRC-1 transfer of the price to the job's escrow account with the job's buy memo.
``model buy`` checks the job and that the escrow is bound to the terms its spec shows, registers
the buyer with the coordinator (so the publisher can wrap the model key to it), makes that
transfer over the ledger's HTTP API (once: a buyer who paid already is not charged again), then
waits for the key. The publisher's agent wraps the key once the escrow shows the payment (``job
run`` does it while it sells, ``model grant`` once); then ``model download`` fetches and
decrypts the model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from califusion.agent.buyer import BuyerAgent
from califusion.agent.client import CoordinatorClient, poll
from califusion.agent.escrow_client import HttpEscrowAPI
from califusion.agent.payments import check_escrow, require_balance
from califusion.agent.payments_sales import ModelSeller
from califusion.cli.common import (
    DEFAULT_COORDINATOR,
    PASSPHRASE_ENV,
    CoordinatorOpt,
    KeystoreOpt,
    LedgerUrlOpt,
    PassphraseEnvOpt,
    connect,
    console,
    friendly_errors,
    money,
    unlock,
)
from califusion.cli.jobs import publisher
from califusion.core.errors import InvalidInput, NotFound, PermissionDenied, Unavailable
from califusion.ledger.escrow_ids import escrow_account
from califusion.protocol.payout import format_tokens

app = typer.Typer(help="Sell and buy access to trained models.", no_args_is_help=True)


@app.command()
@friendly_errors
def buy(
    job_id: str,
    timeout: Annotated[
        float, typer.Option(min=0, help="Seconds to wait for the publisher to grant the key.")
    ] = 600.0,
    wait: Annotated[
        bool, typer.Option(help="Wait for the key (else pay and return at once).")
    ] = True,
    ledger: LedgerUrlOpt = None,
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Pay a model's price into its job's escrow (once), then wait for its key."""
    identity = unlock(keystore, passphrase_env)
    with connect(coordinator, identity) as client, money(identity, ledger, coordinator) as bank:
        agent = BuyerAgent(client, bank.ledger, bank.escrow)
        job, price = agent.check(job_id)
        client.model_offer(job_id)  # NotFound until the publisher offers it
        status = check_escrow(job, bank.escrow.status(job_id))
        if status.has_paid(identity.principal):
            console.print(
                f"you paid for {job_id} already (block {status.purchases[identity.principal]}): "
                "not paying again",
                highlight=False,
            )
        else:
            require_balance(bank.ledger, price, f"buying the model of {job_id}", 1)
            block = agent.buy(job_id)
            console.print(
                f"paid {format_tokens(price)} into escrow {escrow_account(job_id)} (block {block})",
                highlight=False,
                soft_wrap=True,
            )
        if not wait:
            return
        _wait_for_key(client, job_id, timeout)
    console.print(
        f"the publisher granted you the model key: `califusion model download {job_id}`",
        highlight=False,
    )


def _wait_for_key(client: CoordinatorClient, job_id: str, timeout: float) -> None:
    with console.status(f"waiting for the publisher's agent to grant the key of {job_id}"):
        for _ in poll(1.0, timeout):
            try:
                client.access_key(job_id)
                return
            except (NotFound, PermissionDenied, Unavailable):
                continue
    raise Unavailable(
        f"no key granted for {job_id} within {timeout:.0f} s: the publisher's agent grants it "
        f"while `job run` sells the model. Your payment is in escrow; run `califusion model "
        f"buy {job_id}` again to wait (it will not pay twice)"
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
    ledger: LedgerUrlOpt = None,
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Publisher: wrap the model key to every buyer whose payment the escrow shows."""
    agent = publisher(coordinator, keystore, passphrase_env)
    with agent.client, HttpEscrowAPI(ledger or coordinator, agent.client.identity) as escrow:
        granted = ModelSeller(agent, escrow).grant_paid(job_id)
    console.print(f"model key of {job_id} wrapped to {len(granted)} new buyer(s)")
