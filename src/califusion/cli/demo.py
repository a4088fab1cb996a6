"""`califusion demo`: the whole marketplace end to end on the embedded defaults.

It starts a real coordinator process (SQLite, a local blob folder) on a free port, creates a
publisher and ten trainers, each with its own passphrase-encrypted keystore and its own data
file drawn from the FedProx paper's Synthetic(1,1) generator, runs a federated job to
completion over HTTP, and writes an HTML report. Every run works in a fresh folder, so a
second run is never confused by the first.
"""

from __future__ import annotations

import secrets
import threading
import time
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from califusion.agent.client import CoordinatorClient
from califusion.agent.publisher import PublisherAgent
from califusion.agent.trainer import TrainerAgent
from califusion.cli.common import console, friendly_errors
from califusion.cli.demo_money import CFT, DemoBank, balances_table, escrow_row, snapshot
from califusion.cli.jobs import rounds_table, run_with_progress
from califusion.cli.localserver import CoordinatorProcess
from califusion.cli.report import write_report
from califusion.core.errors import Unavailable
from califusion.crypto.identity import Identity
from califusion.crypto.keystore import save_keystore
from califusion.crypto.principal import Account, Principal
from califusion.ml import evaluate
from califusion.ml.data import Dataset, load_dataset, write_csv, write_npz, write_parquet
from califusion.ml.partition import synthetic, train_test_split_per_device
from califusion.ml.spec import Column, DataSchema, LabelSpec, ModelSpec
from califusion.protocol import AggregationMode, JobSpec, JobState, MemberState
from califusion.protocol.payout import format_tokens as cft

N_FEATURES = 60
N_CLASSES = 10


class Mode(StrEnum):
    """How the demo's rounds are aggregated (``JobSpec.aggregation_mode``)."""

    SECURE = "secure"
    BLIND = "blind"
    PUBLISHER = "publisher"


def demo_spec(trainers: int, rounds: int, epochs: int, mode: AggregationMode = "secure") -> JobSpec:
    schema = DataSchema(
        features=[Column(name=f"x{i}", dtype="float32") for i in range(N_FEATURES)],
        label=LabelSpec(name="label", dtype="int64", n_classes=N_CLASSES),
    )
    model = ModelSpec.model_validate(
        {
            "architecture": {
                "kind": "logistic_regression",
                "n_features": N_FEATURES,
                "n_classes": N_CLASSES,
            },
            "training": {
                "loss": "cross_entropy",
                "optimizer": {"name": "sgd", "learning_rate": 0.01},
                "local_epochs": epochs,
                "batch_size": 10,
            },
        }
    )
    return JobSpec(
        title="Synthetic(1,1) classifier",
        description="Multinomial logistic regression over 60 features, 10 classes, "
        "trained by FedAvg on the FedProx paper's Synthetic(1,1) devices.",
        model=model,
        data_schema=schema,
        rounds=rounds,
        trainers_wanted=trainers,
        min_trainers_per_round=max(1, (trainers * 7) // 10),
        round_deadline_seconds=60,
        aggregation_mode=mode,
        reward_pool=1_000_000_000,
        stake=10_000_000,
        price=200_000_000,
    )


def _write_partitions(
    run_dir: Path, trainers: int, seed: int, schema: DataSchema
) -> tuple[list[Path], Dataset]:
    devices = synthetic(1.0, 1.0, num_devices=trainers, seed=seed)
    train, test = train_test_split_per_device(devices, test_fraction=0.1, seed=seed)
    writers = (write_csv, write_parquet, write_npz)
    suffixes = (".csv", ".parquet", ".npz")
    paths = []
    for i, (x, y) in enumerate(train):
        path = run_dir / "data" / f"trainer-{i:02d}{suffixes[i % 3]}"
        writers[i % 3](path, x, y, schema)
        paths.append(path)
    val_x = np.concatenate([x for x, _ in test])
    val_y = np.concatenate([y for _, y in test])
    val_path = run_dir / "data" / "publisher-validation.npz"
    write_npz(val_path, val_x, val_y, schema)
    return paths, load_dataset(val_path, schema)


def _identity(run_dir: Path, name: str, passphrase: str) -> Identity:
    identity = Identity.generate()
    save_keystore(run_dir / "keys" / f"{name}.json", identity, passphrase, name=name)
    return identity


@friendly_errors
def demo(
    out: Annotated[Path, typer.Option(help="Folder for this and later demo runs.")] = Path(
        "demo-output"
    ),
    trainers: Annotated[int, typer.Option(min=2, max=30)] = 10,
    rounds: Annotated[int, typer.Option(min=1, max=500)] = 15,
    epochs: Annotated[int, typer.Option(min=1, max=50)] = 5,
    seed: Annotated[int, typer.Option()] = 1,
    mode: Annotated[
        Mode, typer.Option(help="secure: SecAgg+; blind: SecAgg+ with padded sums; publisher.")
    ] = Mode.SECURE,
) -> None:
    """Run a federated job end to end: coordinator, publisher, trainers, report."""
    started = time.monotonic()
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_dir = (out / f"run-{stamp}-{secrets.token_hex(3)}").resolve()
    (run_dir / "data").mkdir(parents=True)
    (run_dir / "keys").mkdir()
    spec = demo_spec(trainers, rounds, epochs, mode.value)
    console.rule(f"[bold]CaliFusion demo[/] · {run_dir}")

    passphrase = secrets.token_urlsafe(18)
    bank = DemoBank(run_dir, passphrase)  # the ledger, its operator and escrow executor
    # it reads funding and stakes in the bank's ledger, and moves nothing
    server = CoordinatorProcess.in_folder(run_dir, ledger_database_url=bank.url)
    with server, bank.serving() as ledger_url:  # agents pay over the ledger's HTTP API
        console.print(f"coordinator up at {server.url} (SQLite, blobs in {server.blob_dir})")
        publisher_id = _identity(run_dir, "publisher", passphrase)
        trainer_ids = [_identity(run_dir, f"trainer-{i:02d}", passphrase) for i in range(trainers)]
        buyer_id = _identity(run_dir, "buyer", passphrase)
        console.print(f"{2 + trainers} identities with encrypted keystores in {run_dir / 'keys'}")
        parties: list[tuple[str, Principal | Account]] = [
            ("publisher", publisher_id.principal),
            *[(f"trainer-{i:02d}", t.principal) for i, t in enumerate(trainer_ids)],
            ("buyer", buyer_id.principal),
        ]
        bank.mint(publisher_id.principal, spec.reward_pool + CFT)
        for identity in trainer_ids:
            bank.mint(identity.principal, CFT)
        bank.mint(buyer_id.principal, (spec.price or 0) + CFT)
        console.print(
            f"ledger at {ledger_url}/ledger/v1 ({bank.url}): minted to the publisher, the "
            "trainers and a buyer"
        )
        data_paths, validation = _write_partitions(run_dir, trainers, seed, spec.data_schema)
        console.print(
            f"Synthetic(1,1) data: {trainers} local files (CSV, Parquet, NPZ), "
            f"{validation.num_samples} held-out samples for the publisher"
        )

        pub_client = CoordinatorClient(server.url, publisher_id)
        pub_client.register("publisher")
        publisher = PublisherAgent(
            pub_client,
            run_dir / "publisher",
            validation=validation,
            admission=bank.stake_decider(),  # the job key only to trainers whose stake is seen
            payments=bank.publisher_payments(publisher_id),
        )
        job = publisher.create_job(spec)
        parties.append(escrow_row(job.job_id))
        before, supply = snapshot(bank, parties), bank.ledger.icrc1_total_supply()
        job = publisher.open(job.job_id)  # signs the escrow terms and funds the pool first
        console.print(
            f"job [bold]{job.job_id}[/] created, {cft(spec.reward_pool)} in escrow, opened: "
            f"{spec.title}"
        )

        agents = []
        for i, (identity, path) in enumerate(zip(trainer_ids, data_paths, strict=True)):
            client = CoordinatorClient(server.url, identity)
            client.register(f"trainer-{i:02d}")
            agent = TrainerAgent(
                client,
                load_dataset(path, spec.data_schema),
                seed=seed * 1000 + i,
                payments=bank.trainer_payments(identity, i),
            )
            agent.join(job.job_id)  # stakes first (approve + collect, or a memo'd transfer)
            agents.append(agent)
        job = publisher.admit_pending(job.job_id)
        admitted = sum(1 for m in job.members if m.state == MemberState.ADMITTED)
        console.print(f"{admitted} trainers staked {cft(spec.stake)}, joined, got the job key")

        errors: list[BaseException] = []

        def train(agent: TrainerAgent) -> None:
            try:
                agent.run(job.job_id, interval=0.1)
            except BaseException as exc:  # reported below, not lost in the thread
                errors.append(exc)

        threads = [threading.Thread(target=train, args=(a,), daemon=True) for a in agents]
        job = publisher.start(job.job_id)
        for thread in threads:
            thread.start()
        final = run_with_progress(publisher, job)
        for thread in threads:
            thread.join(timeout=30)
        if errors:
            raise Unavailable(f"a trainer failed: {errors[0]!r}")
        rounds_info = pub_client.rounds(job.job_id)
        report = write_report(run_dir / "report.html", final, rounds_info)
        if final.state == JobState.COMPLETED:
            settled = bank.executor.run_due()  # rewards, stake refunds (or slashes): by the rule
            console.print(f"escrow settled {job.job_id}: {len(settled)} payments")
            buyer_client = CoordinatorClient(server.url, buyer_id)
            block, bought = bank.sell_to(publisher, buyer_client, job.job_id)
            sale = bank.executor.run_due()  # the proceeds, split publisher / trainers
            bought_accuracy = evaluate(spec.model, bought, validation.x, validation.y).accuracy
            console.print(
                f"buyer paid {cft(spec.price or 0)} (block {block}), got the model key, "
                f"decrypted the model (validation accuracy {bought_accuracy:.2%}); "
                f"{len(sale)} proceeds payments"
            )
            after = snapshot(bank, parties)
            console.print(balances_table(parties, before, after))
            burnt = supply - bank.ledger.icrc1_total_supply()
            moved = sum(after.values()) - sum(before.values())
            console.print(f"ledger fees burnt {cft(burnt)}; all balances together {cft(moved)}")
            buyer_client.close()
    bank.close()
    if final.state != JobState.COMPLETED:
        raise Unavailable(f"job ended {final.state.value}: {final.state_reason}")
    console.print(rounds_table(rounds_info[-5:]))
    last = rounds_info[-1].metrics
    accuracy = f"{last.accuracy:.2%}" if last and last.accuracy is not None else "n/a"
    console.print(
        f"[bold green]completed[/] {rounds} rounds with {trainers} trainers in "
        f"{time.monotonic() - started:.1f} s · final validation accuracy {accuracy}"
    )
    console.print(f"report: {report}")
