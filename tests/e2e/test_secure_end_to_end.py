"""Secure and blind aggregation over HTTP, with 30% of the trainers killed in the first round.

A real coordinator process, a publisher and ten trainers run three rounds. In round 1 one
trainer dies right after advertising its keys and two right after sharing them (their shares
are needed to unmask the others); they never come back, so rounds 2 and 3 run without them
from the start. The job completes, every round's model is plaintext FedAvg of the survivors'
updates within the quantization bound, every round verifies, and nothing at rest — database,
blob folder, coordinator log — holds any trainer's update; in blind mode not even the sum.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from califusion.agent.client import CoordinatorClient
from califusion.agent.contexts import model_context
from califusion.agent.secure_verify import verify_round
from califusion.agent.trainer import TrainerAgent
from califusion.cli.localserver import CoordinatorProcess
from califusion.crypto import symmetric
from califusion.crypto.encoding import b64d
from califusion.fl.secagg import MaskedInputRef, SecAggConfig, ShareKeys, remove_pad
from califusion.ml import Weights, flatten, from_safetensors, train_local
from califusion.protocol import AggregationMode, JobSpec, JobState, RoundInfo

from .secure_jobs import die_before, run_secure_job

pytestmark = pytest.mark.e2e
TRAINERS = 10
ROUNDS = 3
# 30% killed in round 1: one right after advertising its keys, two right after sharing them
VICTIMS = {7: die_before(ShareKeys), 8: die_before(MaskedInputRef), 9: die_before(MaskedInputRef)}


@pytest.fixture
def coordinator(tmp_path: Path) -> Iterator[CoordinatorProcess]:
    with CoordinatorProcess.in_folder(tmp_path) as server:
        yield server


def _model(
    key: bytes, client: CoordinatorClient, digest: str, version: int, spec: JobSpec
) -> Weights:
    plain = symmetric.decrypt(key, client.get_blob(digest), model_context(version))
    return from_safetensors(plain, spec.model)[0]


def _local_update(spec: JobSpec, agent: TrainerAgent, start: Weights, rnd: RoundInfo) -> np.ndarray:
    """What ``agent`` trained in ``rnd``: its local training is deterministic given its seed."""
    rng = np.random.default_rng([agent.seed, rnd.number, rnd.attempt])
    result = train_local(spec.model, start, agent.data.x, agent.data.y, rng=rng)
    return flatten(result.weights).astype(np.float64) - flatten(start)


def _at_rest(coordinator: CoordinatorProcess) -> list[bytes]:
    found = [p.read_bytes() for p in coordinator.blob_dir.rglob("*") if p.is_file()]
    found.append(coordinator.log_path.read_bytes())
    db_file = Path(coordinator.database_url.removeprefix("sqlite:///"))
    found.extend(p.read_bytes() for p in db_file.parent.glob(db_file.name + "*"))
    engine = sa.create_engine(coordinator.database_url)
    try:
        with engine.connect() as conn:
            for table in sa.inspect(conn).get_table_names():
                for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                    found.extend(
                        bytes(v) if isinstance(v, (bytes, memoryview)) else str(v).encode()
                        for v in row
                        if v is not None
                    )
    finally:
        engine.dispose()
    return found


def _fragments(words: np.ndarray) -> list[bytes]:
    raw = np.ascontiguousarray(words).tobytes()
    return [raw[i : i + 24] for i in (0, len(raw) // 3, len(raw) // 2, len(raw) - 24)]


@pytest.mark.parametrize("mode", ["secure", "blind"])
def test_secure_rounds_survive_killed_trainers(
    mode: AggregationMode, coordinator: CoordinatorProcess, tmp_path: Path
) -> None:
    with ExitStack() as stack:
        run = run_secure_job(
            coordinator.url,
            tmp_path,
            stack,
            mode=mode,
            trainers=TRAINERS,
            rounds=ROUNDS,
            min_trainers=7,
            deadline=10.5,  # a stage timeout of 1.5 s
            hooks=VICTIMS,
        )
        spec, job, publisher, trainers = run.spec, run.job, run.publisher, run.trainers
        assert run.final.state == JobState.COMPLETED, run.final.state_reason

        rounds = publisher.client.rounds(job.job_id)
        survivors = [t for i, t in enumerate(trainers) if i not in VICTIMS]
        assert [r.number for r in rounds] == [1, 2, 3]
        for r in rounds:
            assert sorted(r.contributors) == sorted(t.me for t in survivors)

        key = publisher.job_key(job.job_id)
        session = publisher.client.secagg_session(job.job_id, 1)
        config = SecAggConfig.from_dict(session.config)
        weights = {p.principal: p.declared_samples for p in session.participants}
        n_max = max(weights.values())
        total_weight = sum(weights[t.me] for t in survivors) / n_max
        bound = config.quantizer.error_bound(len(survivors)) / total_weight
        models = [_model(key, publisher.client, job.initial_model, 0, spec)]
        secrets: list[bytes] = []
        for r in rounds:
            assert r.result_model is not None
            models.append(_model(key, publisher.client, r.result_model, r.number, spec))
            updates = {t.me: _local_update(spec, t, models[-2], r) for t in survivors}
            plain_fedavg = flatten(models[-2]).astype(np.float64) + sum(
                weights[me] * u for me, u in updates.items()
            ) / sum(weights[me] for me in updates)
            error = np.abs(flatten(models[-1]) - plain_fedavg).max()
            assert error <= bound + 1e-6, (error, bound)
            assert verify_round(publisher.client, job.job_id, r.number).ok

            # what must never be at rest: any trainer's quantized update; in blind mode, the sum
            for t in survivors:
                scaled = updates[t.me] * (weights[t.me] / n_max)
                secrets += _fragments(config.quantizer.quantize(scaled))
            session = publisher.client.secagg_session(job.job_id, r.number)
            assert session.result is not None
            total = np.frombuffer(publisher.client.get_blob(session.result), config.dtype)
            if mode == "blind":
                plain_sum = remove_pad(total, key, b64d(session.round_id), session.contributors)
                secrets += _fragments(plain_sum)
            else:
                sums = _fragments(total)  # stored on purpose: a check that the search works

    at_rest = b"\n".join(_at_rest(coordinator))
    assert len(at_rest) > 100_000
    if mode == "secure":
        assert all(fragment in at_rest for fragment in sums)
    for secret in secrets:
        assert secret not in at_rest
