"""Models: analytic gradients against finite differences, predictions, evaluation, registry."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from califusion.core.errors import DataSchemaError, SpecError
from califusion.ml.models import (
    MLP,
    LinearRegression,
    LogisticRegression,
    evaluate,
    model_for,
)
from califusion.ml.spec import ModelSpec
from califusion.ml.weights import Weights, flatten, init_weights, unflatten

from .model_specs import linear, logistic, mlp

SPECS = {
    "linear": linear(4, 2, init_seed=1),
    "logistic": logistic(5, 3, init_seed=2),
    "mlp-relu": mlp(4, (6, 5), 3, activation="relu", init_seed=3),
    "mlp-tanh": mlp(4, (6,), 3, activation="tanh", init_seed=4),
    "mlp-regression": mlp(4, (5,), 2, task="regression", activation="tanh", init_seed=5),
}


def _data(spec: ModelSpec, rows: int, seed: int) -> tuple[np.ndarray[Any, Any], Any]:
    rng = np.random.default_rng(seed)
    model = model_for(spec)
    x = rng.normal(size=(rows, model.n_features)).astype(np.float32)
    if model.is_classifier:
        return x, rng.integers(0, model.n_outputs, rows)
    return x, rng.normal(size=(rows, model.n_outputs)).astype(np.float32)


def _perturbed(spec: ModelSpec, seed: int) -> Weights:
    """Initial weights with non-zero biases, so every parameter matters."""
    rng = np.random.default_rng(seed)
    vector = flatten(init_weights(spec))
    vector += rng.normal(scale=0.3, size=vector.shape).astype(np.float32)
    return unflatten(vector, spec)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_gradient_matches_central_differences(name: str) -> None:
    spec = SPECS[name]
    model = model_for(spec)
    x, y = _data(spec, 7, seed=10)
    weights = _perturbed(spec, seed=11)
    loss, grad = model.loss_and_grad(weights, x, y)
    assert loss == pytest.approx(model.loss(weights, x, y), rel=1e-5)
    analytic = flatten(grad).astype(np.float64)
    point = flatten(weights).astype(np.float64)
    rng = np.random.default_rng(12)
    eps = 1e-2

    def loss_at(vector: np.ndarray[Any, Any]) -> float:
        return model.loss(unflatten(vector, spec), x, y)

    # every coordinate, then random directions (which catch a mis-scaled or mixed-up tensor)
    numeric = np.empty_like(point)
    for i in range(point.size):
        step = np.zeros_like(point)
        step[i] = eps
        numeric[i] = (loss_at(point + step) - loss_at(point - step)) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=2e-2, atol=2e-3)
    for _ in range(3):
        direction = rng.normal(size=point.shape)
        direction /= np.linalg.norm(direction)
        slope = (loss_at(point + eps * direction) - loss_at(point - eps * direction)) / (2 * eps)
        assert float(analytic @ direction) == pytest.approx(slope, rel=1e-2, abs=1e-4)


def test_logistic_known_answer_at_zero_weights() -> None:
    spec = logistic(2, 4)
    model = model_for(spec)
    zero = {"weight": np.zeros((2, 4), np.float32), "bias": np.zeros(4, np.float32)}
    x = np.array([[1.0, 2.0], [3.0, -1.0]], np.float32)
    y = np.array([0, 3])
    loss, grad = model.loss_and_grad(zero, x, y)
    assert loss == pytest.approx(np.log(4.0))
    np.testing.assert_allclose(grad["bias"], [0.25 - 0.5, 0.25, 0.25, 0.25 - 0.5])
    expected_w = x.T @ (np.full((2, 4), 0.25) - np.eye(4)[y]) / 2
    np.testing.assert_allclose(grad["weight"], expected_w, rtol=1e-6)


def test_linear_regression_known_answer() -> None:
    spec = linear(1, 1)
    model = model_for(spec)
    weights = {"weight": np.array([[2.0]], np.float32), "bias": np.array([1.0], np.float32)}
    x = np.array([[1.0], [2.0]], np.float32)
    y = np.array([4.0, 4.0], np.float32)  # predictions 3 and 5: residuals -1 and +1
    loss, grad = model.loss_and_grad(weights, x, y)
    assert loss == pytest.approx(1.0)
    assert grad["weight"][0, 0] == pytest.approx((2 * -1 * 1 + 2 * 1 * 2) / 2)
    assert grad["bias"][0] == pytest.approx(0.0)
    np.testing.assert_allclose(np.asarray(model.predict(weights, x), float), [[3.0], [5.0]])


def test_softmax_cross_entropy_is_stable_for_huge_logits() -> None:
    spec = logistic(3, 3)
    model = model_for(spec)
    weights = {"weight": np.eye(3, dtype=np.float32) * 1e4, "bias": np.zeros(3, np.float32)}
    x = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], np.float32)
    y = np.array([0, 1])  # right (loss 0), then wrong by a margin of 1e4
    loss, grad = model.loss_and_grad(weights, x, y)
    assert loss == pytest.approx(1e4 / 2)
    assert all(np.isfinite(t).all() for t in grad.values())
    metrics = evaluate(spec, weights, x, y)
    assert metrics.loss == pytest.approx(1e4 / 2)
    assert metrics.accuracy == 0.5 and metrics.correct == 1 and metrics.samples == 2


def test_predict_and_evaluate_for_a_classifier() -> None:
    spec = logistic(2, 2)
    weights = {"weight": np.array([[1, -1], [0, 0]], np.float32), "bias": np.zeros(2, np.float32)}
    x = np.array([[1.0, 0.0], [-1.0, 0.0], [2.0, 5.0]], np.float32)
    assert model_for(spec).predict(weights, x).tolist() == [0, 1, 0]
    metrics = evaluate(spec, weights, x, np.array([0, 0, 0]))
    assert metrics.accuracy == pytest.approx(2 / 3) and metrics.correct == 2


def test_regression_metrics_have_no_accuracy() -> None:
    spec = linear(2, 1)
    weights = init_weights(spec)
    metrics = evaluate(spec, weights, np.ones((3, 2), np.float32), np.zeros(3))
    assert metrics.accuracy is None and metrics.samples == 3 and metrics.loss >= 0


def test_registry_maps_kinds_to_classes() -> None:
    assert type(model_for(SPECS["linear"])) is LinearRegression
    assert type(model_for(SPECS["logistic"])) is LogisticRegression
    assert type(model_for(SPECS["mlp-relu"])) is MLP
    assert model_for(SPECS["mlp-regression"]).head == "mse"


def test_unknown_architecture_is_a_spec_error() -> None:
    fake = SimpleNamespace(kind="transformer", n_features=4, n_outputs=2)
    bogus = SPECS["linear"].model_copy(update={"architecture": fake})  # skips validation
    with pytest.raises(SpecError, match="unknown architecture 'transformer'"):
        model_for(bogus)
    with pytest.raises(SpecError):
        LinearRegression(SPECS["logistic"])


@pytest.mark.parametrize(
    ("x", "y", "message"),
    [
        (np.ones((3, 4)), np.array([0, 1, 2]), r"shape \(rows, 5\)"),
        (np.ones((0, 5)), np.array([], dtype=np.int64), "no rows"),
        (np.full((2, 5), np.nan), np.array([0, 1]), "NaN"),
        (np.ones((2, 5)), np.array([0, 3]), r"\[0, 3\)"),
        (np.ones((2, 5)), np.array([0, -1]), r"\[0, 3\)"),
        (np.ones((2, 5)), np.array([0.5, 1.0]), "whole numbers"),
        (np.ones((2, 5)), np.array([0, 1, 2]), "labels of shape"),
        (np.ones((2, 5)), np.array(["a", "b"]), "integers"),
    ],
)
def test_bad_data_is_a_data_schema_error(x: Any, y: Any, message: str) -> None:
    spec = logistic(5, 3)
    with pytest.raises(DataSchemaError, match=message):
        evaluate(spec, init_weights(spec), x, y)


def test_integral_float_labels_are_accepted() -> None:
    spec = logistic(5, 3)
    metrics = evaluate(spec, init_weights(spec), np.ones((2, 5)), np.array([0.0, 2.0]))
    assert metrics.samples == 2
