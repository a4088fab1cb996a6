"""Synthetic(1,1) FedAvg reaches the same accuracy with secure aggregation as in plaintext.

The FedProx paper's setting, shortened: 30 devices, 10 per round, logistic regression. Each
round is aggregated twice from the same local models: in plaintext (sample-weighted mean) and
through a full SecAgg+ round (``simulate_round``) of the sample-weighted updates
``(n_k / n_max)·(w_k − w_global)``, as the agents do over HTTP, with one client dropping after
sharing its keys. Both runs follow the same trajectory, so their accuracy must agree to within
0.1 percentage points (quantization error is ~1e-7 per weight).
"""

from __future__ import annotations

import os

import numpy as np

from califusion.fl import strategy_for
from califusion.fl.secagg import SecAggConfig, Stage, simulate_round
from califusion.ml import ModelSpec, Weights, evaluate, flatten, init_weights, train_local
from califusion.ml.partition import synthetic, train_test_split_per_device
from califusion.ml.weights import unflatten

DEVICES, PER_ROUND, ROUNDS, EPOCHS = 30, 10, 12, 4


def _spec() -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "architecture": {"kind": "logistic_regression", "n_features": 60, "n_classes": 10},
            "training": {
                "loss": "cross_entropy",
                "optimizer": {"name": "sgd", "learning_rate": 0.01},
                "local_epochs": EPOCHS,
                "batch_size": 10,
            },
        }
    )


def secure_fedavg(
    spec: ModelSpec, start: Weights, local: list[tuple[Weights, int]], dropout: bool
) -> Weights:
    """FedAvg of ``local`` computed the way secure mode does: from a SecAgg+ sum."""
    n_max = max(n for _, n in local)
    anchor = flatten(start).astype(np.float64)
    updates = {
        k: (flatten(w).astype(np.float64) - anchor) * (n / n_max) for k, (w, n) in enumerate(local)
    }
    config = SecAggConfig.plan(updates, anchor.size, clip=10.0, max_dropout=0.2)
    dropouts = {len(local) - 1: Stage.MASKED_INPUT} if dropout else {}
    result = simulate_round(config, updates, round_id=os.urandom(16), dropouts=dropouts).result
    summed = config.quantizer.dequantize_sum(result.total, len(result.contributors))
    weight = sum(local[k][1] for k in result.contributors) / n_max
    return unflatten(anchor + summed / weight, spec)


def test_secure_fedavg_matches_plaintext_accuracy() -> None:
    spec = _spec()
    devices = synthetic(1.0, 1.0, num_devices=DEVICES, seed=0)
    train, test = train_test_split_per_device(devices, test_fraction=0.1, seed=0)
    test_x = np.concatenate([x for x, _ in test])
    test_y = np.concatenate([y for _, y in test])
    fedavg = strategy_for("fedavg")
    plain = secure = init_weights(spec)
    choice = np.random.default_rng(0)
    for r in range(ROUNDS):
        selected = choice.choice(DEVICES, PER_ROUND, replace=False)
        dropout = r % 3 == 2  # now and then the last client drops after sharing its keys
        survivors = selected[:-1] if dropout else selected

        def local_models(
            start: Weights, devices: np.ndarray, seed: int = r
        ) -> list[tuple[Weights, int]]:
            rng = np.random.default_rng(seed)  # both runs train with the same randomness
            trained = [train_local(spec, start, *train[d], rng=rng) for d in devices]
            return [(t.weights, t.num_samples) for t in trained]

        plain = fedavg.aggregate(plain, local_models(plain, survivors))
        local = local_models(secure, selected)
        reference = fedavg.aggregate(secure, local[: len(survivors)])
        secure = secure_fedavg(spec, secure, local, dropout)
        assert np.abs(flatten(secure) - flatten(reference)).max() < 1e-5
    plain_acc = evaluate(spec, plain, test_x, test_y).accuracy
    secure_acc = evaluate(spec, secure, test_x, test_y).accuracy
    assert plain_acc is not None and secure_acc is not None
    assert plain_acc > 0.5
    assert abs(plain_acc - secure_acc) <= 0.001
