"""`califusion job …`: the publisher's commands."""

from __future__ import annotations

import json
from contextlib import nullcontext
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from califusion.agent.admission import StakeDecider
from califusion.agent.client import poll
from califusion.agent.payments import PublisherPayments
from califusion.agent.payments_sales import ModelSeller
from califusion.agent.publisher import PublisherAgent, RoundReport, write_json
from califusion.cli.common import (
    DEFAULT_COORDINATOR,
    PASSPHRASE_ENV,
    CoordinatorOpt,
    KeystoreOpt,
    LedgerUrlOpt,
    Money,
    PassphraseEnvOpt,
    califusion_home,
    connect,
    console,
    find_money,
    friendly_errors,
    has_money,
    unlock,
)
from califusion.cli.verify import rounds_to_verify, verify_rounds
from califusion.core.errors import InvalidInput, Unavailable
from califusion.crypto.encoding import b64d
from califusion.crypto.identity import Identity
from califusion.ledger.escrow_api import EscrowReader
from califusion.ledger.escrow_store import EscrowStatus
from califusion.ml import to_safetensors
from califusion.ml.data import Dataset, load_dataset
from califusion.ml.spec import load_spec_file
from califusion.protocol import JobInfo, JobSpec, JobState, RoundInfo
from califusion.protocol.payout import format_tokens

app = typer.Typer(help="Publish and run training jobs (publisher side).", no_args_is_help=True)


def agent_state_dir(identity: Identity) -> Path:
    return califusion_home() / "agents" / identity.principal.to_text()


def publisher(
    coordinator: str, keystore: Path | None, passphrase_env: str, *, with_validation: str = ""
) -> PublisherAgent:
    identity = unlock(keystore, passphrase_env)
    agent = PublisherAgent(connect(coordinator, identity), agent_state_dir(identity))
    if with_validation:
        agent.validation = _local_validation(agent, with_validation)
    return agent


def with_money(
    agent: PublisherAgent, spec: JobSpec, ledger: str | None, coordinator: str
) -> Money | None:
    """Give a job's publisher agent its money side when the job moves tokens: it funds the
    escrow on open, admits only trainers whose stake the escrow shows, and signs each round's
    contributors (and the close statement) for the escrow."""
    if not has_money(spec):
        return None
    identity = agent.client.identity
    connections = find_money(identity, ledger, coordinator)
    if connections is None:
        return None
    agent.payments = PublisherPayments(identity, connections.ledger, connections.escrow)
    agent.admission = StakeDecider(connections.escrow)
    return connections


def _local_validation(agent: PublisherAgent, job_id: str) -> Dataset | None:
    local = agent.state_dir / "jobs" / job_id / "local.json"
    if not local.exists():
        return None
    path = json.loads(local.read_text()).get("validation")
    if not path:
        return None
    return load_dataset(Path(path), agent.client.job(job_id).spec.data_schema)


@app.command()
@friendly_errors
def create(
    spec_file: Annotated[Path, typer.Argument(help="Job spec, .json or .toml.")],
    validation: Annotated[
        Path | None, typer.Option(help="Your own held-out data to evaluate each round.")
    ] = None,
    open_now: Annotated[
        bool, typer.Option("--open", help="Open the job at once (funding its escrow first).")
    ] = False,
    ledger: LedgerUrlOpt = None,
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Create a draft job: a fresh job key, the initial model encrypted under it."""
    spec: JobSpec = load_spec_file(JobSpec, spec_file)
    if validation is not None:
        load_dataset(validation, spec.data_schema)  # fail now, not at round 1
    agent = publisher(coordinator, keystore, passphrase_env)
    job = agent.create_job(spec)
    write_json(
        agent.state_dir / "jobs" / job.job_id / "local.json",
        {"validation": str(validation.resolve()) if validation else None},
    )
    console.print(f"created [bold]{job.job_id}[/] (draft): {spec.title}")
    console.print(job.job_id, highlight=False, soft_wrap=True, style="dim")
    if open_now:
        job = _open_funded(agent, job.job_id, ledger, coordinator)
        console.print(f"{job.job_id} is {job.state.value}")


def _open_funded(
    agent: PublisherAgent, job_id: str, ledger: str | None, coordinator: str
) -> JobInfo:
    """Sign and register the escrow terms, fund the reward pool, then open the job."""
    spec = agent.client.job(job_id).spec
    connections = with_money(agent, spec, ledger, coordinator)
    if connections is None:
        return agent.open(job_id)
    with connections:
        job = agent.open(job_id)
        status = connections.escrow.status(job_id)
    console.print(
        f"escrow terms signed and registered; reward pool {format_tokens(status.funded)} in "
        f"escrow {status.account}; stake {format_tokens(spec.stake)} per trainer"
        + (f"; model price {format_tokens(spec.price)}" if spec.price is not None else ""),
        highlight=False,
        soft_wrap=True,
    )
    return job


@app.command("open")
@friendly_errors
def open_(
    job_id: str,
    ledger: LedgerUrlOpt = None,
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Open a draft job to trainers; a job with a reward pool is funded in escrow first."""
    agent = publisher(coordinator, keystore, passphrase_env)
    job = _open_funded(agent, job_id, ledger, coordinator)
    console.print(f"{job.job_id} is {job.state.value}")


@app.command()
@friendly_errors
def start(
    job_id: str,
    ledger: LedgerUrlOpt = None,
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Admit the waiting trainers (those whose stake the escrow shows) and start round 1."""
    agent = publisher(coordinator, keystore, passphrase_env)
    with with_money(agent, agent.client.job(job_id).spec, ledger, coordinator) or nullcontext():
        job = agent.start(job_id)
    console.print(f"{job.job_id} is {job.state.value}, round {job.current_round}")


@app.command()
@friendly_errors
def cancel(
    job_id: str,
    ledger: LedgerUrlOpt = None,
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Cancel a job that has not ended (its escrow refunds the pool and stakes, before any
    round; after one it settles on the rounds proven)."""
    agent = publisher(coordinator, keystore, passphrase_env)
    with with_money(agent, agent.client.job(job_id).spec, ledger, coordinator) or nullcontext():
        job = agent.cancel(job_id)
    console.print(f"{job.job_id} is {job.state.value}")


@app.command()
@friendly_errors
def run(
    job_id: str,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    sell: Annotated[
        bool,
        typer.Option(
            help="After completion, offer a priced model and grant its key to each buyer whose "
            "payment the escrow shows, until interrupted (Ctrl-C) or --sell-for ends."
        ),
    ] = True,
    sell_for: Annotated[
        float | None, typer.Option(min=0, help="Stop selling after this many seconds.")
    ] = None,
    ledger: LedgerUrlOpt = None,
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Serve a job as its aggregator until it ends: admit staked trainers, aggregate every
    round, record each round's contributors in escrow; then sell access to the model."""
    agent = publisher(coordinator, keystore, passphrase_env, with_validation=job_id)
    job = agent.client.job(job_id)
    connections = with_money(agent, job.spec, ledger, coordinator)
    with connections or nullcontext():
        final = run_with_progress(agent, job, timeout)
        console.print(f"{final.job_id} ended {final.state.value} {final.state_reason}".rstrip())
        if connections is None:
            return
        status = connections.escrow.status(job_id)
        ending = status.ending.value if status.ending is not None else "not settled yet"
        console.print(
            f"escrow: {status.rounds_recorded} round(s) recorded, {ending}; the escrow pays "
            "rewards and refunds stakes by its rule",
            highlight=False,
        )
        if sell and final.state == JobState.COMPLETED and final.spec.price is not None:
            sell_model(agent, connections.escrow, final, sell_for)


def sell_model(
    agent: PublisherAgent, escrow: EscrowReader, job: JobInfo, sell_for: float | None
) -> None:
    """Offer the final model and wrap its key to each paid buyer until interrupted."""
    seller = ModelSeller(agent, escrow)
    seller.offer(job.job_id)
    price = format_tokens(job.spec.price or 0)
    console.print(
        f"model of {job.job_id} on offer at {price}: granting its key to each buyer whose "
        "payment the escrow shows (Ctrl-C to stop)",
        highlight=False,
    )
    try:
        for _ in poll(1.0, sell_for):
            try:
                granted = seller.grant_paid(job.job_id)
            except Unavailable as exc:  # the coordinator or ledger restarting: try again
                console.print(f"[yellow]waiting:[/] {exc}", highlight=False)
                continue
            for buyer in granted:
                console.print(f"granted the model key to {buyer}", highlight=False)
    except KeyboardInterrupt:
        pass
    console.print("stopped selling", highlight=False)


def run_with_progress(agent: PublisherAgent, job: JobInfo, timeout: float | None = None) -> JobInfo:
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[metrics]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task(
            "rounds", total=job.spec.rounds, completed=job.rounds_completed, metrics=""
        )

        def show(report: RoundReport) -> None:
            m = report.metrics
            parts = [f"round {report.number:>3}", f"{len(report.contributors)} updates"]
            if m.train_loss is not None:
                parts.append(f"train loss {m.train_loss:.4f}")
            if m.loss is not None:
                parts.append(f"val loss {m.loss:.4f}")
            if m.accuracy is not None:
                parts.append(f"val acc {m.accuracy:.2%}")
            if report.rejected:
                parts.append(f"[red]{len(report.rejected)} rejected[/]")
            progress.console.print("  ".join(parts))
            progress.update(task, completed=report.number, metrics=parts[-1])

        agent.on_round = show
        return agent.run(job.job_id, timeout=timeout)


@app.command()
@friendly_errors
def status(
    job_id: str,
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
    ledger: LedgerUrlOpt = None,
) -> None:
    """Show a job's state, members, rounds and escrow."""
    identity = unlock(keystore, passphrase_env)
    client = connect(coordinator, identity)
    job = client.job(job_id)
    console.print(
        f"[bold]{job.spec.title}[/] {job.job_id}\n"
        f"state {job.state.value} {job.state_reason}  round {job.current_round}/{job.spec.rounds}"
        f"  completed {job.rounds_completed}  publisher {job.publisher}"
    )
    members = Table("trainer", "state", "samples", "rounds", title="members")
    for m in job.members:
        members.add_row(
            m.trainer, m.state.value, str(m.declared_samples), str(m.rounds_contributed)
        )
    console.print(members)
    console.print(rounds_table(client.rounds(job_id)))
    found = find_money(identity, ledger, coordinator, quiet=True)
    if found is not None:
        with found:
            console.print(escrow_table(found.escrow.status(job_id)))


def escrow_table(escrow: EscrowStatus) -> Table:
    """A job's escrow as the ledger shows it: terms, deposits, outcome."""
    table = Table("escrow", "", title=f"escrow {escrow.account.to_text()}", show_header=False)
    if escrow.terms is None:
        table.add_row("terms", "none registered: this job moves no money")
        return table
    terms = escrow.terms
    table.add_row(
        "reward pool", f"{format_tokens(escrow.funded)} of {format_tokens(terms.reward_pool)}"
    )
    table.add_row("stakes", f"{len(escrow.stakes)} × {format_tokens(terms.stake)}")
    table.add_row("purchases", str(len(escrow.purchases)))
    table.add_row("rounds recorded", f"{escrow.rounds_recorded}/{terms.rounds}")
    table.add_row("outcome", escrow.ending.value if escrow.ending is not None else "running")
    table.add_row("payments made", str(escrow.payments_made))
    table.add_row("balance now", format_tokens(escrow.balance))
    return table


def rounds_table(rounds: list[RoundInfo]) -> Table:
    table = Table("round", "attempt", "state", "updates", "train loss", "val loss", "val acc")
    for r in rounds:
        m = r.metrics
        table.add_row(
            str(r.number),
            str(r.attempt),
            r.state.value,
            str(len(r.contributors) if r.contributors else r.updates_received),
            _fmt(m.train_loss if m else None),
            _fmt(m.loss if m else None),
            f"{m.accuracy:.2%}" if m and m.accuracy is not None else "-",
        )
    return table


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


@app.command()
@friendly_errors
def verify(
    job_id: str,
    round_number: Annotated[
        int | None, typer.Option("--round", help="Only this round (default: every finished one).")
    ] = None,
    coordinator_key: Annotated[
        str | None,
        typer.Option(help="Pin the coordinator's signing key (base64url) instead of asking it."),
    ] = None,
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Check that each securely aggregated round's result is the sum of its committed inputs."""
    pinned = b64d(coordinator_key) if coordinator_key else None
    with connect(coordinator, unlock(keystore, passphrase_env)) as client:
        numbers = rounds_to_verify(client, job_id, round_number)
        table, checked = verify_rounds(client, job_id, numbers, pinned)
    console.print(table)
    if not all(c.ok for c in checked):
        raise typer.Exit(1)


@app.command()
@friendly_errors
def results(
    job_id: str,
    out: Annotated[Path, typer.Option(help="Where to write the decrypted final model.")] = Path(
        "model.safetensors"
    ),
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Decrypt a completed job's final model and write it as safetensors."""
    agent = publisher(coordinator, keystore, passphrase_env)
    job, weights = agent.results(job_id)
    if out.exists():
        raise InvalidInput(f"{out} exists; choose another --out")
    out.write_bytes(to_safetensors(weights, {"job_id": job.job_id}))
    console.print(rounds_table(agent.client.rounds(job_id)))
    console.print(f"final model of {job.job_id} written to {out}")
