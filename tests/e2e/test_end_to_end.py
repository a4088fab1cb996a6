"""A real coordinator process, a publisher and three trainers, three rounds over HTTP.

Run once on SQLite and once on PostgreSQL. Afterwards the model must have improved, and
neither the coordinator's database nor its blob folder may hold any plaintext weights: not the
global models, not a single trainer's update.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from califusion.agent.client import CoordinatorClient
from califusion.agent.contexts import model_context, update_context
from califusion.agent.publisher import PublisherAgent
from califusion.agent.trainer import TrainerAgent
from califusion.cli.demo import demo_spec
from califusion.cli.localserver import CoordinatorProcess
from califusion.crypto import envelope, symmetric
from califusion.crypto.identity import Identity
from califusion.ml import Weights, evaluate, from_safetensors, init_weights
from califusion.ml.data import Dataset
from califusion.ml.partition import synthetic, train_test_split_per_device
from califusion.protocol import JobState

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["sqlite", "postgresql"])
def coordinator(
    request: pytest.FixtureRequest, tmp_path: Path, fresh_postgres_database: str
) -> Iterator[CoordinatorProcess]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'coordinator.db'}"
    else:
        url = fresh_postgres_database
    with CoordinatorProcess.in_folder(tmp_path, database_url=url) as server:
        yield server


def _data(seed: int) -> tuple[list[Dataset], Dataset]:
    devices = synthetic(1.0, 1.0, num_devices=3, seed=seed)
    train, test = train_test_split_per_device(devices, test_fraction=0.1, seed=seed)
    trainers = [Dataset(x=x[:400], y=y[:400]) for x, y in train]
    val_x = np.concatenate([x for x, _ in test])
    val_y = np.concatenate([y for _, y in test])
    return trainers, Dataset(x=val_x, y=val_y)


def _fragments(weights: Weights) -> list[bytes]:
    """Byte strings that would betray plaintext weights if found at rest."""
    found = []
    for tensor in weights.values():
        raw = np.ascontiguousarray(tensor, dtype=np.float32).tobytes()
        if np.count_nonzero(tensor) > 8:
            found.append(raw[:32])
            found.append(raw[len(raw) // 2 : len(raw) // 2 + 32])
    return found


def _database_bytes(url: str) -> bytes:
    engine = sa.create_engine(url)
    chunks: list[bytes] = []
    try:
        with engine.connect() as conn:
            for table in sa.inspect(conn).get_table_names():
                for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                    for value in row:
                        if isinstance(value, (bytes, memoryview)):
                            chunks.append(bytes(value))
                        elif value is not None:
                            chunks.append(str(value).encode())
    finally:
        engine.dispose()
    return b"\n".join(chunks)


@pytest.fixture
def closing() -> Iterator[ExitStack]:
    with ExitStack() as stack:
        yield stack


def test_three_rounds_three_trainers(coordinator: CoordinatorProcess, closing: ExitStack) -> None:
    spec = demo_spec(trainers=3, rounds=3, epochs=2).model_copy(
        update={
            "round_deadline_seconds": 60.0,
            "min_trainers_per_round": 3,
            "aggregation_mode": "publisher",  # secure and blind: test_secure_end_to_end.py
        }
    )
    trainer_data, validation = _data(seed=7)
    publisher_identity = Identity.generate()
    publisher = PublisherAgent(
        closing.enter_context(CoordinatorClient(coordinator.url, publisher_identity)),
        coordinator.log_path.parent / "publisher",
        validation=validation,
    )
    publisher.client.register("publisher")
    job = publisher.open(publisher.create_job(spec).job_id)

    trainers = []
    for i, data in enumerate(trainer_data):
        client = closing.enter_context(CoordinatorClient(coordinator.url, Identity.generate()))
        client.register(f"trainer-{i}")
        agent = TrainerAgent(client, data, seed=i)
        agent.join(job.job_id)
        trainers.append(agent)
    publisher.start(job.job_id)

    threads = [
        threading.Thread(target=t.run, args=(job.job_id,), kwargs={"timeout": 120}, daemon=True)
        for t in trainers
    ]
    for thread in threads:
        thread.start()
    final = publisher.run(job.job_id, timeout=120)
    for thread in threads:
        thread.join(timeout=30)

    assert final.state == JobState.COMPLETED, final.state_reason
    assert final.rounds_completed == 3
    rounds = publisher.client.rounds(job.job_id)
    assert [r.number for r in rounds] == [1, 2, 3]
    assert all(len(r.contributors) == 3 for r in rounds)

    # the model improved on the publisher's held-out data
    _, final_weights = publisher.results(job.job_id)
    before = evaluate(spec.model, init_weights(spec.model), validation.x, validation.y)
    after = evaluate(spec.model, final_weights, validation.x, validation.y)
    assert after.loss < before.loss * 0.9
    assert after.accuracy is not None and before.accuracy is not None
    assert after.accuracy > before.accuracy

    # collect every plaintext the job produced: global models and each trainer's updates
    key = publisher.job_key(job.job_id)
    plaintext_models: list[Weights] = [init_weights(spec.model)]
    for r in rounds:
        assert r.result_model is not None
        blob = publisher.client.get_blob(r.result_model)
        weights, _ = from_safetensors(
            symmetric.decrypt(key, blob, model_context(r.number)), spec.model
        )
        plaintext_models.append(weights)
        for update in publisher.client.updates(job.job_id, r.number):
            ctx = update_context(job.job_id, r.number, r.attempt, update.trainer, publisher.me)
            sealed = publisher.client.get_blob(update.update)
            plain = envelope.open_envelope(sealed, publisher_identity, ctx)
            plaintext_models.append(from_safetensors(plain, spec.model)[0])
    assert len(plaintext_models) == 1 + 3 + 3 * 3

    at_rest = [p.read_bytes() for p in coordinator.blob_dir.rglob("*") if p.is_file()]
    at_rest.append(_database_bytes(coordinator.database_url))
    if coordinator.database_url.startswith("sqlite"):
        db_file = Path(coordinator.database_url.removeprefix("sqlite:///"))
        at_rest.extend(p.read_bytes() for p in db_file.parent.glob(db_file.name + "*"))
    assert len(at_rest) > 10
    fragments = [f for w in plaintext_models for f in _fragments(w)]
    assert len(fragments) > 20
    for stored in at_rest:
        assert b"__metadata__" not in stored and b'"data_offsets"' not in stored
        for fragment in fragments:
            assert fragment not in stored
