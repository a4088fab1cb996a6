"""`califusion trainer …`: join a job and train on local data that never leaves this machine."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from califusion.agent.payments import TrainerPayments
from califusion.agent.trainer import TrainerAgent, TrainingReport
from califusion.cli.common import (
    DEFAULT_COORDINATOR,
    PASSPHRASE_ENV,
    CoordinatorOpt,
    KeystoreOpt,
    LedgerUrlOpt,
    Money,
    PassphraseEnvOpt,
    connect,
    console,
    find_money,
    friendly_errors,
    has_money,
    unlock,
)
from califusion.crypto.principal import Account
from califusion.ledger.escrow_ids import escrow_account
from califusion.protocol import JobInfo
from califusion.protocol.payout import format_tokens

app = typer.Typer(help="Take part in training jobs (trainer side).", no_args_is_help=True)


class StakeMethod(StrEnum):
    APPROVE = "approve"
    TRANSFER = "transfer"


DataOpt = Annotated[Path, typer.Option("--data", help="Local CSV, Parquet or NPZ file.")]


StakeMethodOpt = Annotated[
    StakeMethod,
    typer.Option(
        "--stake-method",
        help="approve: ICRC-2 approve the job's escrow account, then the escrow collects "
        "(two fees); transfer: one transfer with the job's stake memo (one fee).",
    ),
]


def _agent(
    coordinator: str,
    keystore: Path | None,
    passphrase_env: str,
    job_id: str,
    data: Path,
    *,
    ledger: str | None = None,
    stake_method: StakeMethod = StakeMethod.APPROVE,
) -> tuple[TrainerAgent, Money | None]:
    """The trainer's agent; for a job that moves tokens, with its stake and statement checks."""
    client = connect(coordinator, unlock(keystore, passphrase_env))
    job = client.job(job_id)
    agent = TrainerAgent.from_file(client, job, data)
    if not has_money(job.spec):
        return agent, None
    identity = client.identity
    connections = find_money(identity, ledger, coordinator)
    if connections is None:
        return agent, None
    agent.payments = TrainerPayments(connections.ledger, connections.escrow, stake_method.value)
    return agent, connections


def _show_stake(agent: TrainerAgent, connections: Money, job: JobInfo) -> None:
    """Balance, stake and fee, before anything is paid."""
    me = agent.client.identity.principal
    status = connections.escrow.status(job.job_id)
    if job.spec.stake == 0 or status.stake_of(me) >= job.spec.stake:
        return
    assert agent.payments is not None
    fee = connections.ledger.icrc1_fee()
    fees = 2 if agent.payments.method == "approve" else 1
    balance = connections.ledger.icrc1_balance_of(Account(me))
    console.print(
        f"balance {format_tokens(balance)}; stake {format_tokens(job.spec.stake)} into escrow "
        f"{escrow_account(job.job_id)} by {agent.payments.method} "
        f"(fee {format_tokens(fee)} x {fees})",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
@friendly_errors
def join(
    job_id: str,
    data: DataOpt,
    stake_method: StakeMethodOpt = StakeMethod.APPROVE,
    ledger: LedgerUrlOpt = None,
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Check your data against the job's schema, check the job's escrow and stake, then ask
    to join."""
    agent, connections = _agent(
        coordinator, keystore, passphrase_env, job_id, data, ledger=ledger,
        stake_method=stake_method,
    )  # fmt: skip
    if connections is not None:
        _show_stake(agent, connections, agent.client.job(job_id))
    job = agent.join(job_id)
    if connections is not None:
        staked = connections.escrow.status(job_id).stake_of(agent.client.identity.principal)
        console.print(f"staked {format_tokens(staked)} in escrow", highlight=False)
        connections.close()
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
    stake_method: StakeMethodOpt = StakeMethod.APPROVE,
    ledger: LedgerUrlOpt = None,
    coordinator: CoordinatorOpt = DEFAULT_COORDINATOR,
    keystore: KeystoreOpt = None,
    passphrase_env: PassphraseEnvOpt = PASSPHRASE_ENV,
) -> None:
    """Train every round of a job you joined until it ends. With money, round n is trained
    only once the escrow holds the publisher's statement of round n - 1."""
    agent, connections = _agent(
        coordinator, keystore, passphrase_env, job_id, data, ledger=ledger,
        stake_method=stake_method,
    )  # fmt: skip
    job = agent.client.job(job_id)
    if agent.membership(job) is None:
        if connections is not None:
            _show_stake(agent, connections, job)
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
    if connections is not None:
        with connections:
            me = Account(agent.client.identity.principal)
            balance = connections.ledger.icrc1_balance_of(me)
        console.print(
            f"balance {format_tokens(balance)} (the escrow pays rewards and refunds stakes "
            "once the job is settled)",
            highlight=False,
        )
