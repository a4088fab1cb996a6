"""Partitioners and the FedProx Synthetic(α, β) generator.

The known-answer tests run a literal, loop-based port of the authors' script
(github.com/litian96/FedProx, data/synthetic_0_0/generate_synthetic.py, whose non-IID branch is
data/synthetic_1_1/generate_synthetic.py) with the global NumPy and ``random`` state seeded, and
require the vectorized generator to give the same arrays.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from califusion.core.errors import InvalidInput
from califusion.ml.partition import (
    _softmax_argmax,
    _synthetic_devices,
    dirichlet,
    iid,
    synthetic,
    train_test_split_per_device,
)

# --- the authors' code, ported literally (only NUM_USER made a parameter) ------------------


def _their_softmax(x: NDArray[np.float64]) -> NDArray[np.float64]:
    ex = np.exp(x)
    sum_ex = np.sum(np.exp(x))
    result: NDArray[np.float64] = ex / sum_ex
    return result


def _their_generate_synthetic(
    alpha: float, beta: float, iid: int, num_user: int
) -> tuple[list[Any], list[Any]]:
    dimension = 60
    NUM_CLASS = 10

    samples_per_user = np.random.lognormal(4, 2, (num_user)).astype(int) + 50
    X_split: list[Any] = [[] for _ in range(num_user)]
    y_split: list[Any] = [[] for _ in range(num_user)]

    #### define some eprior ####
    mean_W = np.random.normal(0, alpha, num_user)
    mean_b = mean_W
    B = np.random.normal(0, beta, num_user)
    mean_x = np.zeros((num_user, dimension))

    diagonal = np.zeros(dimension)
    for j in range(dimension):
        diagonal[j] = np.power((j + 1), -1.2)
    cov_x = np.diag(diagonal)

    for i in range(num_user):
        if iid == 1:
            mean_x[i] = np.ones(dimension) * B[i]  # all zeros
        else:
            mean_x[i] = np.random.normal(B[i], 1, dimension)

    if iid == 1:
        W_global = np.random.normal(0, 1, (dimension, NUM_CLASS))
        b_global = np.random.normal(0, 1, NUM_CLASS)

    for i in range(num_user):
        W = np.random.normal(mean_W[i], 1, (dimension, NUM_CLASS))
        b = np.random.normal(mean_b[i], 1, NUM_CLASS)

        if iid == 1:
            W = W_global
            b = b_global

        xx = np.random.multivariate_normal(mean_x[i], cov_x, samples_per_user[i])
        yy = np.zeros(samples_per_user[i])

        for j in range(samples_per_user[i]):
            tmp = np.dot(xx[j], W) + b
            yy[j] = np.argmax(_their_softmax(tmp))

        X_split[i] = xx.tolist()
        y_split[i] = yy.tolist()

    return X_split, y_split


def _their_split(X: list[Any], y: list[Any]) -> tuple[list[Any], list[Any]]:  # noqa: N803
    """The loop of the script's main(), returning (x, y) train and test lists per user."""
    train, test = [], []
    for i in range(len(X)):
        combined = list(zip(X[i], y[i], strict=True))
        random.shuffle(combined)
        X[i][:], y[i][:] = zip(*combined, strict=True)
        num_samples = len(X[i])
        train_len = int(0.9 * num_samples)
        train.append((X[i][:train_len], y[i][:train_len]))
        test.append((X[i][train_len:], y[i][train_len:]))
    return train, test


@pytest.fixture
def global_random_state() -> Iterator[None]:
    """The port seeds NumPy's and Python's global generators; put them back afterwards."""
    numpy_state, python_state = np.random.get_state(), random.getstate()
    # Their softmax overflows for large logits; errstate silences the warning, not the values.
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        yield
    np.random.set_state(numpy_state)
    random.setstate(python_state)


def _run_theirs(alpha: float, beta: float, iid: int, num_user: int, seed: int) -> Any:
    np.random.seed(seed)
    return _their_generate_synthetic(alpha, beta, iid, num_user)


@pytest.mark.usefixtures("global_random_state")
@pytest.mark.parametrize(
    ("alpha", "beta", "iid_flag", "seed"),
    [(1.0, 1.0, False, 0), (0.5, 0.5, False, 3), (0.5, 0.5, True, 1), (0.0, 0.0, True, 2)],
)
def test_synthetic_equals_the_authors_loop(
    alpha: float, beta: float, iid_flag: bool, seed: int
) -> None:
    their_x, their_y = _run_theirs(alpha, beta, int(iid_flag), 3, seed)
    ours = synthetic(alpha, beta, iid=iid_flag, num_devices=3, seed=seed)
    assert len(ours) == 3
    for (x, y), tx, ty in zip(ours, their_x, their_y, strict=True):
        np.testing.assert_array_equal(x, np.asarray(tx).astype(np.float32))
        np.testing.assert_array_equal(y, np.asarray(ty).astype(np.int64))


@pytest.mark.usefixtures("global_random_state")
def test_synthetic_keeps_their_softmax_where_it_overflows() -> None:
    # With α = β = 2 and seed 6 many logits exceed ~709: exp overflows in their softmax.
    their_x, their_y = _run_theirs(2.0, 2.0, 0, 3, 6)
    devices = _synthetic_devices(2.0, 2.0, iid=False, num_devices=3, seed=6)
    plain = np.concatenate([np.argmax(d.x @ d.w + d.b, axis=1) for d in devices])
    ours = np.concatenate([d.y for d in devices])
    theirs = np.concatenate([np.asarray(ty) for ty in their_y]).astype(np.int64)
    np.testing.assert_array_equal(ours, theirs)
    assert np.any(plain != theirs)  # so this case really tests the overflow path
    np.testing.assert_array_equal(devices[0].x, np.asarray(their_x[0]))


def test_softmax_argmax_is_row_wise_and_keeps_overflow() -> None:
    logits = np.array([[0.0, 2.0, 1.0], [800.0, 900.0, 0.0], [-800.0, -900.0, -1000.0]])
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        expected = [int(np.argmax(_their_softmax(row))) for row in logits]
    assert expected == [1, 0, 0]  # inf/inf is NaN; argmax picks the first NaN
    np.testing.assert_array_equal(_softmax_argmax(logits), expected)


@pytest.mark.usefixtures("global_random_state")
def test_train_test_split_equals_the_authors_loop() -> None:
    their_x, their_y = _run_theirs(1.0, 1.0, 0, 3, 0)
    random.seed(7)
    their_train, their_test = _their_split(their_x, their_y)
    devices = synthetic(1.0, 1.0, num_devices=3, seed=0)
    train, test = train_test_split_per_device(devices, seed=7)
    for ours, theirs in zip([*train, *test], [*their_train, *their_test], strict=True):
        np.testing.assert_array_equal(ours[0], np.asarray(theirs[0]).astype(np.float32))
        np.testing.assert_array_equal(ours[1], np.asarray(theirs[1]).astype(np.int64))


# --- synthetic: shape, determinism, statistics -------------------------------------------


def test_synthetic_shapes_and_types() -> None:
    devices = synthetic(1.0, 1.0, seed=0)
    assert len(devices) == 30
    for x, y in devices:
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.ndim == 2 and x.shape[1] == 60 and y.shape == (x.shape[0],)
        assert x.shape[0] >= 50
        assert y.min() >= 0 and y.max() < 10
    assert len({len(y) for _, y in devices}) > 5  # lognormal sizes, not equal


def test_synthetic_is_deterministic_per_seed() -> None:
    a = synthetic(0.5, 0.5, num_devices=4, seed=11)
    b = synthetic(0.5, 0.5, num_devices=4, seed=11)
    c = synthetic(0.5, 0.5, num_devices=4, seed=12)
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[0][0][:50], c[0][0][:50])


def test_iid_devices_share_one_model_and_non_iid_do_not() -> None:
    shared = _synthetic_devices(0.0, 0.0, iid=True, num_devices=5, seed=4)
    w, b = shared[0].w, shared[0].b
    for device in shared:
        np.testing.assert_array_equal(device.w, w)
        np.testing.assert_array_equal(np.argmax(device.x @ w + b, axis=1), device.y)
    skewed = _synthetic_devices(1.0, 1.0, iid=False, num_devices=5, seed=4)
    w, b = skewed[0].w, skewed[0].b
    agree = np.mean(np.concatenate([np.argmax(d.x @ w + d.b, 1) == d.y for d in skewed[1:]]))
    assert agree < 0.5


def test_non_iid_devices_have_different_input_means() -> None:
    iid_means = [
        d.x.mean(axis=0) for d in _synthetic_devices(0, 0, iid=True, num_devices=6, seed=1)
    ]
    skew_means = [
        d.x.mean(axis=0) for d in _synthetic_devices(0, 1, iid=False, num_devices=6, seed=1)
    ]
    assert np.std([m.mean() for m in iid_means]) < 0.1
    assert np.std([m.mean() for m in skew_means]) > 0.3


def test_synthetic_rejects_bad_arguments() -> None:
    with pytest.raises(InvalidInput, match="alpha and beta"):
        synthetic(-1.0, 0.0, seed=0)
    with pytest.raises(InvalidInput, match="num_devices"):
        synthetic(0.0, 0.0, num_devices=0, seed=0)


# --- train/test split ----------------------------------------------------------------------


def _numbered(sizes: list[int]) -> list[tuple[NDArray[Any], NDArray[Any]]]:
    """Devices whose samples carry their global index as x, so ownership can be checked."""
    bounds = np.cumsum([0, *sizes])
    return [
        (np.arange(lo, hi, dtype=np.float32)[:, None], np.arange(lo, hi) % 3)
        for lo, hi in itertools.pairwise(bounds)
    ]


def test_split_sizes_and_every_sample_once() -> None:
    devices = _numbered([50, 57, 123])
    train, test = train_test_split_per_device(devices, seed=1)
    for (x, _), (xtr, ytr), (xte, yte) in zip(devices, train, test, strict=True):
        assert len(xtr) == int(0.9 * len(x)) == len(ytr)
        assert len(xtr) + len(xte) == len(x) == len(ytr) + len(yte)
        np.testing.assert_array_equal(np.sort(np.concatenate([xtr, xte])[:, 0]), x[:, 0])
        np.testing.assert_array_equal(ytr, xtr[:, 0].astype(np.int64) % 3)
    assert not np.array_equal(train[2][0][:, 0], devices[2][0][: len(train[2][0]), 0])


def test_split_without_seed_keeps_order_and_with_seed_is_reproducible() -> None:
    devices = _numbered([60, 70])
    train, test = train_test_split_per_device(devices, test_fraction=0.25)
    np.testing.assert_array_equal(train[0][0], devices[0][0][:45])
    np.testing.assert_array_equal(test[1][0], devices[1][0][52:])
    first = train_test_split_per_device(devices, seed=3)[0]
    again = train_test_split_per_device(devices, seed=3)[0]
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
    with pytest.raises(InvalidInput, match="test_fraction"):
        train_test_split_per_device(devices, test_fraction=1.0)


# --- iid and Dirichlet partitions ----------------------------------------------------------


def _labelled(n: int, classes: int, seed: int = 0) -> tuple[NDArray[Any], NDArray[np.int64]]:
    x = np.arange(n, dtype=np.float64)[:, None] * np.ones((1, 3))
    y = np.random.default_rng(seed).integers(0, classes, n)
    return x, y


def _assert_every_sample_once(x: NDArray[Any], parts: list[tuple[NDArray[Any], Any]]) -> None:
    ids = np.concatenate([px[:, 0] for px, _ in parts])
    np.testing.assert_array_equal(np.sort(ids), x[:, 0])


def test_iid_is_even_complete_and_deterministic() -> None:
    x, y = _labelled(103, 4)
    parts = iid(x, y, 10, seed=5)
    assert sorted(len(py) for _, py in parts) == [10] * 7 + [11] * 3
    _assert_every_sample_once(x, parts)
    for px, py in parts:
        np.testing.assert_array_equal(py, y[px[:, 0].astype(int)])
    again = iid(x, y, 10, seed=5)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(parts, again, strict=True))
    other = iid(x, y, 10, seed=6)
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(parts, other, strict=True))
    with pytest.raises(InvalidInput, match="among 200 clients"):
        iid(x, y, 200, seed=0)


def test_dirichlet_keeps_every_sample_once_and_min_size() -> None:
    x, y = _labelled(2000, 10)
    parts = dirichlet(x, y, 20, alpha=0.3, seed=1, min_size=15)
    _assert_every_sample_once(x, parts)
    assert min(len(py) for _, py in parts) >= 15
    for px, py in parts:
        np.testing.assert_array_equal(py, y[px[:, 0].astype(int)])
    again = dirichlet(x, y, 20, alpha=0.3, seed=1, min_size=15)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(parts, again, strict=True))


def _class_shares(parts: list[tuple[Any, NDArray[Any]]], classes: int) -> NDArray[np.float64]:
    counts = np.array([np.bincount(py, minlength=classes) for _, py in parts], dtype=np.float64)
    shares: NDArray[np.float64] = counts / counts.sum(axis=1, keepdims=True)
    return shares


def test_dirichlet_large_alpha_is_balanced_small_alpha_is_skewed() -> None:
    x, y = _labelled(10_000, 10)
    balanced = _class_shares(dirichlet(x, y, 10, alpha=1000.0, seed=2), 10)
    assert np.abs(balanced - 0.1).max() < 0.04
    skewed = _class_shares(dirichlet(x, y, 10, alpha=0.1, seed=2), 10)
    assert skewed.max(axis=1).mean() > 0.4
    sizes = [len(py) for _, py in dirichlet(x, y, 10, alpha=1000.0, seed=2)]
    assert max(sizes) - min(sizes) < 200


def test_dirichlet_stops_feeding_a_client_at_its_fair_share() -> None:
    # 50 classes of 200: a client gets no share of a class once it holds n / clients = 1000,
    # so no client can end above 1000 + 200, however skewed the draw.
    x = np.arange(10_000, dtype=np.float64)[:, None]
    y = np.repeat(np.arange(50), 200)
    parts = dirichlet(x, y, 10, alpha=0.1, seed=0, min_size=1)
    assert max(len(py) for _, py in parts) <= 1200
    _assert_every_sample_once(x, parts)


def test_dirichlet_refuses_what_it_cannot_do() -> None:
    x, y = _labelled(100, 5)
    with pytest.raises(InvalidInput, match="at least 20 samples each"):
        dirichlet(x, y, 10, alpha=1.0, seed=0, min_size=20)
    with pytest.raises(InvalidInput, match="in 3 attempts"):
        dirichlet(x, y, 10, alpha=0.001, seed=0, min_size=10, max_attempts=3)
    with pytest.raises(InvalidInput, match="positive"):
        dirichlet(x, y, 10, alpha=0.0, seed=0)
    with pytest.raises(InvalidInput, match="integer"):
        dirichlet(x, y.astype(np.float64), 10, alpha=1.0, seed=0)
