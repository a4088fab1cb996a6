"""`califusion trainer …`: join a job and train on local data that never leaves this machine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from califusion.agent.trainer import TrainerAgent, TrainingReport
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

app = typer.Typer(help="Take part in training jobs (trainer side).", no_args_is_help=True)

DataOpt = Annotated[Path, typer.Option("--data", help="Local CSV, Parquet or NPZ file.")]


def _agent(
    coordinator: str, keystore: Path | None, passphrase_env: str, job_id: str, data: Path
) -> TrainerAgent:
    client = connect(coordinator, unlock(keystore, passphrase_env))
    job = client.job(job_id)
    return TrainerAgent.from_file(client, job, data)


@app.command()
@friendly_errors
def join(
    job_id: str,
    data: DataOpt,
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Check your data against the job's schema, then ask to join."""
    agent = _agent(coordinator, keystore, passphrase_env, job_id, data)
    job = agent.join(job_id)
    console.print(
        f"asked to join {job.job_id} with {agent.data.num_samples} samples; "
        f"state {agent.membership(job)}"
    )


@app.command()
@friendly_errors
def run(
    job_id: str,
    data: DataOpt,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Train every round of a job you joined until it ends."""
    agent = _agent(coordinator, keystore, passphrase_env, job_id, data)
    job = agent.client.job(job_id)
    if agent.membership(job) is None:
        job = agent.join(job_id)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("rounds", total=job.spec.rounds, last="waiting for admission")

        def show(report: TrainingReport) -> None:
            progress.update(
                task,
                completed=report.number,
                last=f"round {report.number}: train loss {report.train_loss:.4f}",
            )

        agent.on_round = show
        final = agent.run(job_id, timeout=timeout)
    console.print(f"{final.job_id} ended {final.state.value} {final.state_reason}".rstrip())
