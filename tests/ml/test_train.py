"""Local training: exact steps against a reference loop, FedProx, clipping, convergence."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from califusion.core.errors import DataSchemaError, SpecError, WeightsError
from califusion.ml.models import evaluate, model_for
from califusion.ml.optim import make_optimizer
from califusion.ml.spec import ModelSpec
from califusion.ml.train import train_local
from califusion.ml.weights import Weights, flatten, init_weights, unflatten

from .model_specs import linear, logistic, mlp

Array = np.ndarray[Any, Any]


def _blobs(rows: int, seed: int = 0, classes: int = 3, features: int = 5) -> tuple[Array, Array]:
    """Separable Gaussian blobs."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(classes, features))
    y = rng.integers(0, classes, rows)
    x = (centers[y] + rng.normal(size=(rows, features))).astype(np.float32)
    return x, y


def _reference(spec: ModelSpec, start: Weights, x: Array, y: Array, orders: list[Array]) -> Array:
    """The update rule written out plainly with the allocating gradient API."""
    model = model_for(spec)
    anchor = flatten(start)
    params = anchor.copy()
    optimizer = make_optimizer(spec.training.optimizer, params.size)
    mu = spec.training.proximal_mu
    size = spec.training.batch_size
    for order in orders:
        for begin in range(0, len(order), size):
            rows = order[begin : begin + size]
            _, grad = model.loss_and_grad(unflatten(params, spec), x[rows], y[rows])
            g = flatten(grad) + np.float32(mu) * (params - anchor)
            optimizer.step(params, g)
    return params


@pytest.mark.parametrize(
    "spec",
    [
        logistic(5, 3, batch_size=4, optimizer={"name": "sgd", "learning_rate": 0.3}),
        logistic(5, 3, batch_size=4, proximal_mu=0.7),
        logistic(
            5, 3, batch_size=4, proximal_mu=0.7, optimizer={"name": "adam", "learning_rate": 0.05}
        ),
        mlp(
            5,
            (4,),
            3,
            batch_size=3,
            proximal_mu=0.2,
            optimizer={"name": "sgd", "learning_rate": 0.2, "momentum": 0.9},
        ),
        linear(
            5,
            2,
            batch_size=4,
            proximal_mu=1.5,
            optimizer={"name": "sgd", "learning_rate": 0.05, "weight_decay": 0.1},
        ),
    ],
    ids=["sgd", "sgd-prox", "adam-prox", "mlp-momentum-prox", "linear-decay-prox"],
)
def test_steps_match_the_reference_loop_including_a_partial_batch(spec: ModelSpec) -> None:
    x, labels = _blobs(10, seed=1)  # 10 rows in batches of 4 (or 3): the last batch is partial
    y = labels if model_for(spec).is_classifier else x[:, :2] * 0.5 + 1.0
    start = init_weights(spec)
    rng = np.random.default_rng(5)
    orders = [rng.permutation(10) for _ in range(3)]
    result = train_local(
        spec, start, x, y, epochs=3, rng=np.random.default_rng(0), epoch_order=orders.__getitem__
    )
    np.testing.assert_allclose(
        flatten(result.weights), _reference(spec, start, x, y, orders), rtol=1e-4, atol=1e-6
    )
    assert result.epochs_done == 3 and result.num_samples == 10
    assert result.train_loss == pytest.approx(evaluate(spec, result.weights, x, y).loss)


def test_learns_separable_classes_and_is_deterministic_in_the_rng() -> None:
    spec = logistic(5, 3, local_epochs=5, batch_size=16)
    x, y = _blobs(300)
    start = init_weights(spec)
    a = train_local(spec, start, x, y, rng=np.random.default_rng(1))
    b = train_local(spec, start, x, y, rng=np.random.default_rng(1))
    c = train_local(spec, start, x, y, rng=np.random.default_rng(2))
    assert a.epochs_done == 5
    assert np.array_equal(flatten(a.weights), flatten(b.weights))
    assert not np.array_equal(flatten(a.weights), flatten(c.weights))
    before = evaluate(spec, start, x, y)
    after = evaluate(spec, a.weights, x, y)
    assert after.loss < before.loss / 5 and after.accuracy is not None and after.accuracy > 0.97
    assert flatten(start) is not None and np.array_equal(
        flatten(start), flatten(init_weights(spec))
    )


def test_linear_regression_reaches_least_squares() -> None:
    spec = linear(
        3, 1, local_epochs=200, batch_size=32, optimizer={"name": "sgd", "learning_rate": 0.05}
    )
    rng = np.random.default_rng(3)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    y = x @ np.array([1.5, -2.0, 0.5], np.float32) + 0.25
    result = train_local(spec, init_weights(spec), x, y, rng=rng)
    np.testing.assert_allclose(result.weights["weight"].ravel(), [1.5, -2.0, 0.5], atol=1e-3)
    assert result.weights["bias"][0] == pytest.approx(0.25, abs=1e-3)
    assert result.train_loss < 1e-5


def test_proximal_term_keeps_weights_near_the_global_model() -> None:
    x, y = _blobs(100)
    distances = []
    for mu in (0.0, 1.0, 100.0):
        spec = logistic(
            5,
            3,
            local_epochs=3,
            batch_size=10,
            proximal_mu=mu,
            optimizer={"name": "sgd", "learning_rate": 0.005},
        )
        start = init_weights(spec)
        result = train_local(spec, start, x, y, rng=np.random.default_rng(0))
        distances.append(np.linalg.norm(flatten(result.weights) - flatten(start)))
    assert distances[0] > distances[1] > distances[2] * 5


def test_update_is_clipped_to_clip_norm_keeping_its_direction() -> None:
    x, y = _blobs(100)
    free = logistic(5, 3, local_epochs=2)
    start = init_weights(free)
    unclipped = flatten(train_local(free, start, x, y, rng=np.random.default_rng(0)).weights)
    norm = np.linalg.norm(unclipped - flatten(start))
    assert norm > 0.5
    clipped_spec = logistic(5, 3, local_epochs=2, clip_norm=0.5)
    clipped = flatten(train_local(clipped_spec, start, x, y, rng=np.random.default_rng(0)).weights)
    delta = clipped - flatten(start)
    assert np.linalg.norm(delta) == pytest.approx(0.5, rel=1e-5)
    np.testing.assert_allclose(delta, (unclipped - flatten(start)) * (0.5 / norm), atol=1e-6)


def test_small_update_is_not_clipped() -> None:
    x, y = _blobs(20)
    spec = logistic(5, 3, clip_norm=1e6)
    start = init_weights(spec)
    plain = train_local(logistic(5, 3), start, x, y, rng=np.random.default_rng(0))
    clipped = train_local(spec, start, x, y, rng=np.random.default_rng(0))
    assert np.array_equal(flatten(plain.weights), flatten(clipped.weights))


def test_epochs_default_to_the_spec_and_batch_larger_than_data_is_one_batch() -> None:
    spec = logistic(5, 3, local_epochs=4, batch_size=1000)
    x, y = _blobs(7)
    result = train_local(spec, init_weights(spec), x, y, rng=np.random.default_rng(0))
    assert result.epochs_done == 4 and result.num_samples == 7


def test_bad_inputs_raise_project_errors() -> None:
    spec = logistic(5, 3)
    x, y = _blobs(10)
    start = init_weights(spec)
    rng = np.random.default_rng(0)
    with pytest.raises(SpecError, match="at least one epoch"):
        train_local(spec, start, x, y, epochs=0, rng=rng)
    with pytest.raises(WeightsError):
        train_local(spec, init_weights(logistic(4, 3)), x, y, rng=rng)
    with pytest.raises(DataSchemaError):
        train_local(spec, start, x[:, :4], y, rng=rng)
    with pytest.raises(SpecError, match="10 row indices"):
        train_local(spec, start, x, y, rng=rng, epoch_order=lambda _: np.arange(9))


def test_divergence_is_reported_not_returned() -> None:
    spec = linear(2, 1, local_epochs=50, optimizer={"name": "sgd", "learning_rate": 10.0})
    x = np.full((8, 2), 1e3, np.float32)
    with pytest.raises(WeightsError, match="diverged"):
        train_local(spec, init_weights(spec), x, np.ones(8), rng=np.random.default_rng(0))
