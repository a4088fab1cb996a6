"""Running a small secure-aggregation job over HTTP, for the end-to-end tests."""

from __future__ import annotations

import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from califusion.agent.client import CoordinatorClient
from califusion.agent.publisher import PublisherAgent
from califusion.agent.trainer import TrainerAgent
from califusion.cli.demo import demo_spec
from califusion.crypto.identity import Identity
from califusion.fl.secagg import decode_client
from califusion.ml.data import Dataset
from califusion.ml.partition import synthetic
from califusion.protocol import AggregationMode, JobInfo, JobSpec, SecAggInbox
from califusion.protocol.secagg import SecureAggregationSpec


class Killed(Exception):
    """Not a CaliFusionError: it ends a trainer's thread as a crash would."""


class HookedClient(CoordinatorClient):
    """Calls ``hook(message)`` before posting each secure-aggregation message."""

    hook: Callable[[object], None] | None = None

    def secagg_post(self, job_id: str, number: int, attempt: int, message: bytes) -> SecAggInbox:
        if self.hook is not None:
            self.hook(decode_client(message))
        return super().secagg_post(job_id, number, attempt, message)


def die_before(kind: type) -> Callable[[object], None]:
    """A hook that kills the trainer instead of sending its first message of ``kind``."""

    def hook(message: object) -> None:
        if isinstance(message, kind):
            raise Killed(f"killed before sending {kind.__name__}")

    return hook


@dataclass
class SecureJob:
    spec: JobSpec
    job: JobInfo
    publisher: PublisherAgent
    trainers: list[TrainerAgent]
    final: JobInfo


def datasets(count: int, seed: int = 11) -> list[Dataset]:
    devices = synthetic(1.0, 1.0, num_devices=count, seed=seed)
    # different sizes, so the sample weighting matters
    return [Dataset(x=x[: 60 + 15 * i], y=y[: 60 + 15 * i]) for i, (x, y) in enumerate(devices)]


def validation(seed: int = 12) -> Dataset:
    x, y = synthetic(1.0, 1.0, num_devices=1, seed=seed)[0]
    return Dataset(x=x, y=y)


def run_secure_job(
    url: str,
    state_dir: Path,
    stack: ExitStack,
    *,
    mode: AggregationMode,
    trainers: int,
    rounds: int,
    min_trainers: int,
    deadline: float,
    hooks: dict[int, Callable[[object], None]] | None = None,
    publisher_identity: Identity | None = None,
    timeout: float = 90.0,
    secure: SecureAggregationSpec | None = None,
) -> SecureJob:
    """Publish, admit ``trainers`` trainers and run the job to its end."""
    spec = demo_spec(trainers=trainers, rounds=rounds, epochs=1)
    spec = spec.model_copy(
        update={
            "aggregation_mode": mode,
            "min_trainers_per_round": min_trainers,
            "round_deadline_seconds": deadline,
            "secure_aggregation": secure or spec.secure_aggregation,
        }
    )
    publisher = PublisherAgent(
        stack.enter_context(CoordinatorClient(url, publisher_identity or Identity.generate())),
        state_dir / "publisher",
        validation=validation(),
    )
    publisher.client.register("publisher")
    job = publisher.open(publisher.create_job(spec).job_id)
    agents: list[TrainerAgent] = []
    for i, data in enumerate(datasets(trainers)):
        client = HookedClient(url, Identity.generate())
        stack.enter_context(client)
        client.hook = (hooks or {}).get(i)
        client.register(f"trainer-{i}")
        agent = TrainerAgent(client, data, seed=i)
        agent.join(job.job_id)
        agents.append(agent)
    publisher.start(job.job_id)

    crashes: list[BaseException] = []

    def train(agent: TrainerAgent) -> None:
        try:
            agent.run(job.job_id, interval=0.1, timeout=timeout)
        except Killed:
            pass
        except BaseException as exc:  # reported below, not lost in the thread
            crashes.append(exc)

    threads = [threading.Thread(target=train, args=(a,), daemon=True) for a in agents]
    for thread in threads:
        thread.start()
    final = publisher.run(job.job_id, interval=0.1, timeout=timeout)
    for thread in threads:
        thread.join(timeout=30)
    assert not crashes, crashes
    return SecureJob(spec, job, publisher, agents, final)
