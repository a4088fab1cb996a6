"""A publisher never aggregates a malformed update: wrong shape, NaN/inf, lies, tampering.

Real coordinator process, real agents; two honest trainers and one that sends, in turn, a
wrong-shaped update, a NaN update, an infinite update, an update claiming more samples than it
declared, and a tampered ciphertext. Each round closes with the honest updates only, the
reason is reported, and the global model stays finite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save

from califusion.agent.client import CoordinatorClient
from califusion.agent.contexts import job_key_context, model_context, update_context
from califusion.agent.publisher import PublisherAgent, RoundReport
from califusion.agent.trainer import TrainerAgent
from califusion.cli.demo import demo_spec
from califusion.cli.localserver import CoordinatorProcess
from califusion.crypto import envelope, symmetric
from califusion.crypto.encoding import b64d
from califusion.crypto.identity import Identity
from califusion.ml import Weights, from_safetensors, to_safetensors
from califusion.ml.data import Dataset
from califusion.ml.partition import synthetic
from califusion.protocol import JobInfo, JobState, RoundInfo

pytestmark = pytest.mark.e2e

Forge = Callable[[Weights], tuple[Weights, dict[str, str]]]


def _payload(weights: Weights, samples: int = 50) -> tuple[Weights, dict[str, str]]:
    return weights, {"num_samples": str(samples), "train_loss": "0.5"}


def _wrong_shape(w: Weights) -> tuple[Weights, dict[str, str]]:
    bad = dict(w)
    bad["weight"] = np.zeros((59, 10), dtype=np.float32)
    return _payload(bad)


def _with_value(value: float) -> Forge:
    def forge(w: Weights) -> tuple[Weights, dict[str, str]]:
        bad = {k: v.copy() for k, v in w.items()}
        bad["bias"][3] = value
        return _payload(bad)

    return forge


def _too_many_samples(w: Weights) -> tuple[Weights, dict[str, str]]:
    return _payload(w, samples=10_000)


FORGERIES: list[tuple[str, Forge]] = [
    ("WeightsError", _wrong_shape),
    ("WeightsError", _with_value(float("nan"))),
    ("WeightsError", _with_value(float("inf"))),
    ("InvalidInput", _too_many_samples),
]


class Saboteur:
    """A member that follows the protocol's transport but sends garbage inside it."""

    def __init__(self, client: CoordinatorClient, job_id: str) -> None:
        self.client = client
        self.job_id = job_id
        self.key: bytes | None = None

    def submit(self, job: JobInfo, rnd: RoundInfo, forge: Forge | None) -> None:
        me = self.client.identity.principal.to_text()
        if self.key is None:
            wrapped = b64d(self.client.wrapped_key(self.job_id).wrapped_key)
            self.key = envelope.unwrap_key(
                wrapped, self.client.identity, job_key_context(self.job_id, me)
            )
        plain = symmetric.decrypt(
            self.key, self.client.get_blob(rnd.model), model_context(rnd.number - 1)
        )
        weights, _ = from_safetensors(plain, job.spec.model)
        ctx = update_context(self.job_id, rnd.number, rnd.attempt, me, job.publisher)
        recipient = b64d(job.aggregator_agreement_public)
        if forge is None:  # a bit flipped in an otherwise valid envelope
            sealed = bytearray(envelope.seal(to_safetensors(weights), recipient, ctx))
            sealed[-5] ^= 0x01
            blob = bytes(sealed)
        else:
            tensors, meta = forge(weights)
            blob = envelope.seal(save(tensors, metadata=meta), recipient, ctx)
        digest = self.client.put_blob(blob).digest
        self.client.submit_update(self.job_id, rnd.number, rnd.attempt, digest)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CoordinatorProcess]:
    with CoordinatorProcess.in_folder(tmp_path) as process:
        yield process


def test_publisher_rejects_every_bad_update(server: CoordinatorProcess, tmp_path: Path) -> None:
    rounds = len(FORGERIES) + 1
    spec = demo_spec(trainers=3, rounds=rounds, epochs=1).model_copy(
        update={"min_trainers_per_round": 3, "aggregation_mode": "publisher"}
    )
    devices = synthetic(1.0, 1.0, num_devices=2, seed=3)
    reports: list[RoundReport] = []
    with ExitStack() as stack:
        publisher = PublisherAgent(
            stack.enter_context(CoordinatorClient(server.url, Identity.generate())),
            tmp_path / "publisher",
            on_round=reports.append,
        )
        publisher.client.register()
        job = publisher.open(publisher.create_job(spec).job_id)
        honest = []
        for x, y in devices:
            client = stack.enter_context(CoordinatorClient(server.url, Identity.generate()))
            client.register()
            agent = TrainerAgent(client, Dataset(x=x[:200], y=y[:200]))
            agent.join(job.job_id)
            honest.append(agent)
        bad_client = stack.enter_context(CoordinatorClient(server.url, Identity.generate()))
        bad_client.register()
        bad_client.join(job.job_id, declared_samples=50)
        saboteur = Saboteur(bad_client, job.job_id)
        publisher.start(job.job_id)

        forgeries: list[Forge | None] = [f for _, f in FORGERIES] + [None]
        for number, forge in enumerate(forgeries, start=1):
            job = publisher.client.job(job.job_id)
            for agent in honest:
                agent.step(job.job_id)
            rnd = publisher.client.current_round(job.job_id)
            assert rnd.number == number
            saboteur.submit(job, rnd, forge)
            job = publisher.step(job.job_id)
        _, final = publisher.results(job.job_id)

    expected = [name for name, _ in FORGERIES] + ["DecryptionFailed"]
    assert job.state == JobState.COMPLETED
    saboteur_id = bad_client.identity.principal.to_text()
    assert [r.number for r in reports] == list(range(1, rounds + 1))
    for report, error in zip(reports, expected, strict=True):
        assert saboteur_id not in report.contributors
        assert len(report.contributors) == 2
        assert report.rejected[saboteur_id].startswith(error), report.rejected
    assert all(np.isfinite(t).all() for t in final.values())
