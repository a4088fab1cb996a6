"""Optimizers against hand-written reference updates."""

from __future__ import annotations

import numpy as np
import pytest

from califusion.core.errors import SpecError
from califusion.ml.optim import SGD, Adam, make_optimizer
from califusion.ml.spec import AdamSpec, SGDSpec

GRADS = [
    np.array([0.5, -1.0, 2.0], np.float32),
    np.array([0.1, 0.3, -0.2], np.float32),
    np.array([-0.4, 0.0, 1.0], np.float32),
]
START = np.array([1.0, 2.0, -3.0], np.float32)


def _run(optimizer: SGD | Adam) -> np.ndarray:
    params = START.copy()
    for g in GRADS:
        optimizer.step(params, g.copy())
    return params


def test_plain_sgd() -> None:
    expected = START - 0.1 * sum(GRADS)
    np.testing.assert_allclose(_run(SGD(3, 0.1)), expected, rtol=1e-6)


def test_sgd_momentum_and_weight_decay() -> None:
    params = START.astype(np.float64)
    buffer = None
    for g in GRADS:
        d = g + 0.01 * params
        buffer = d if buffer is None else 0.9 * buffer + d
        params = params - 0.1 * buffer
    np.testing.assert_allclose(
        _run(SGD(3, 0.1, momentum=0.9, weight_decay=0.01)), params, rtol=1e-6
    )


def test_adam_matches_the_bias_corrected_reference() -> None:
    lr, b1, b2, eps, wd = 0.01, 0.9, 0.999, 1e-8, 0.1
    params = START.astype(np.float64)
    m = np.zeros(3)
    v = np.zeros(3)
    for t, g in enumerate(GRADS, start=1):
        d = g + wd * params
        m = b1 * m + (1 - b1) * d
        v = b2 * v + (1 - b2) * d * d
        params = params - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    adam = Adam(3, lr, beta1=b1, beta2=b2, eps=eps, weight_decay=wd)
    np.testing.assert_allclose(_run(adam), params, rtol=1e-5)


def test_adam_first_step_moves_each_weight_by_the_learning_rate() -> None:
    params = START.copy()
    Adam(3, 0.01).step(params, GRADS[0].copy())
    np.testing.assert_allclose(START - params, 0.01 * np.sign(GRADS[0]), rtol=1e-4)


@pytest.mark.parametrize(
    "make", [lambda: SGD(3, 0.1, momentum=0.5), lambda: Adam(3, 0.05, weight_decay=0.01)]
)
def test_state_round_trip_continues_identically(make: object) -> None:
    first = make()  # type: ignore[operator]
    params = START.copy()
    first.step(params, GRADS[0].copy())
    second = make()  # type: ignore[operator]
    second.load_state_dict(first.state_dict())
    a, b = params.copy(), params.copy()
    first.step(a, GRADS[1].copy())
    second.step(b, GRADS[1].copy())
    np.testing.assert_array_equal(a, b)


def test_state_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(SpecError, match="vector of 3 values"):
        Adam(3, 0.1).load_state_dict({"m": np.zeros(2), "v": np.zeros(3), "steps": np.ones(1)})


def test_make_optimizer_from_specs() -> None:
    sgd = make_optimizer(SGDSpec(learning_rate=0.2, momentum=0.5), 4)
    assert isinstance(sgd, SGD) and sgd.momentum == 0.5 and sgd.learning_rate == 0.2
    adam = make_optimizer(AdamSpec(learning_rate=0.01, beta2=0.99), 4)
    assert isinstance(adam, Adam) and adam.beta2 == 0.99
