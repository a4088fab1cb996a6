"""`califusion job …`: the publisher's commands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from califusion.agent.publisher import PublisherAgent, RoundReport, write_json
from califusion.cli.common import (
    DEFAULT_COORDINATOR,
    PASSPHRASE_ENV,
    CoordinatorOpt,
    KeystoreOpt,
    PassphraseEnvOpt,
    califusion_home,
    connect,
    console,
    friendly_errors,
    unlock,
)
from califusion.cli.verify import rounds_to_verify, verify_rounds
from califusion.core.errors import InvalidInput
from califusion.crypto.encoding import b64d
from califusion.crypto.identity import Identity
from califusion.ml import to_safetensors
from califusion.ml.data import Dataset, load_dataset
from califusion.ml.spec import load_spec_file
from califusion.protocol import JobInfo, JobSpec, RoundInfo

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
    open_now: Annotated[bool, typer.Option("--open", help="Open the job at once.")] = False,
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
    if open_now:
        job = agent.open(job.job_id)
    console.print(f"created [bold]{job.job_id}[/] ({job.state.value}): {spec.title}")
    console.print(job.job_id, highlight=False, soft_wrap=True, style="dim")


@app.command("open")
@friendly_errors
def open_(
    job_id: str,
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Open a draft job to trainers."""
    job = publisher(coordinator, keystore, passphrase_env).open(job_id)
    console.print(f"{job.job_id} is {job.state.value}")


@app.command()
@friendly_errors
def start(
    job_id: str,
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Admit the waiting trainers and start round 1."""
    job = publisher(coordinator, keystore, passphrase_env).start(job_id)
    console.print(f"{job.job_id} is {job.state.value}, round {job.current_round}")


@app.command()
@friendly_errors
def cancel(
    job_id: str,
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Cancel a job that has not ended."""
    job = publisher(coordinator, keystore, passphrase_env).cancel(job_id)
    console.print(f"{job.job_id} is {job.state.value}")


@app.command()
@friendly_errors
def run(
    job_id: str,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Serve a job as its aggregator until it ends: admit trainers, aggregate every round."""
    agent = publisher(coordinator, keystore, passphrase_env, with_validation=job_id)
    job = agent.client.job(job_id)
    final = run_with_progress(agent, job)
    console.print(f"{final.job_id} ended {final.state.value} {final.state_reason}".rstrip())


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
) -> None:
    """Show a job's state, members and rounds."""
    client = connect(coordinator, unlock(keystore, passphrase_env))
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
