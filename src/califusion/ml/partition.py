"""Give simulated clients their data: partitioners and the FedProx Synthetic(α, β) benchmark.

Everything here is deterministic given ``seed``.

- :func:`iid` shuffles and splits as evenly as possible.
- :func:`dirichlet` skews labels: each class is spread over clients in Dir(α) proportions.
- :func:`synthetic` is the Synthetic(α, β) generator of the FedProx paper (Li et al., 2020),
  drawing exactly what the authors' script draws (github.com/litian96/FedProx,
  ``data/synthetic_*/generate_synthetic.py``) when that script is preceded by
  ``np.random.seed(seed)``.
- :func:`train_test_split_per_device` splits each device as that script does (first 90% train).

Each partition is a list of ``(x, y)`` pairs, one per client, that together hold every input
sample exactly once.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from califusion.core.errors import InvalidInput

__all__ = [
    "SYNTHETIC_CLASSES",
    "SYNTHETIC_FEATURES",
    "dirichlet",
    "iid",
    "synthetic",
    "train_test_split_per_device",
]

Part = tuple[NDArray[Any], NDArray[Any]]
SYNTHETIC_FEATURES = 60
SYNTHETIC_CLASSES = 10


def _samples(x: ArrayLike, y: ArrayLike, num_clients: int) -> tuple[NDArray[Any], NDArray[Any]]:
    xs, ys = np.asarray(x), np.asarray(y)
    if xs.shape[:1] != ys.shape[:1]:
        raise InvalidInput(f"x has {xs.shape[:1]} rows but y has {ys.shape[:1]}")
    if not 1 <= num_clients <= len(ys):
        raise InvalidInput(f"cannot split {len(ys)} samples among {num_clients} clients")
    return xs, ys


def iid(x: ArrayLike, y: ArrayLike, num_clients: int, *, seed: int) -> list[Part]:
    """Shuffle the samples and split them into ``num_clients`` parts whose sizes differ by ≤ 1."""
    xs, ys = _samples(x, y, num_clients)
    order = np.random.default_rng(seed).permutation(len(ys))
    return [(xs[part], ys[part]) for part in np.array_split(order, num_clients)]


def dirichlet(
    x: ArrayLike,
    y: ArrayLike,
    num_clients: int,
    *,
    alpha: float,
    seed: int,
    min_size: int = 10,
    max_attempts: int = 1000,
) -> list[Part]:
    """Label-skewed split, as in common FL benchmarks (e.g. NIID-Bench, Li et al., ICDE 2022).

    For each class, shares over the clients are drawn from Dir(α, …, α) and the class's shuffled
    samples are cut in those proportions; a client that already holds ``n / num_clients``
    samples gets no share of later classes. The whole draw is repeated until every client has
    at least ``min_size`` samples, at most ``max_attempts`` times. Small α gives each client few
    classes; large α approaches an IID split.
    """
    xs, ys = _samples(x, y, num_clients)
    if not alpha > 0:
        raise InvalidInput(f"Dirichlet alpha must be positive, got {alpha}")
    if ys.ndim != 1 or ys.dtype.kind not in "iu":
        raise InvalidInput(f"labels must be a 1-D integer array, got {ys.dtype} {ys.shape}")
    n = len(ys)
    if num_clients * min_size > n:
        raise InvalidInput(
            f"{n} samples cannot give {num_clients} clients at least {min_size} samples each"
        )
    rng = np.random.default_rng(seed)
    by_class = [np.flatnonzero(ys == label) for label in np.unique(ys)]
    cap = n / num_clients
    for _ in range(max_attempts):
        parts: list[list[NDArray[np.intp]]] = [[] for _ in range(num_clients)]
        sizes = np.zeros(num_clients, dtype=np.int64)
        for class_members in by_class:
            members = rng.permutation(class_members)
            shares = rng.dirichlet(np.full(num_clients, alpha)) * (sizes < cap)
            # Some client is always under the cap while samples remain; guard the float sum.
            total = shares.sum()
            shares = shares / total if total > 0 else (sizes < cap) / np.sum(sizes < cap)
            cuts = (np.cumsum(shares) * len(members)).astype(np.int64)[:-1]
            for client, chunk in enumerate(np.split(members, cuts)):
                parts[client].append(chunk)
            sizes += np.diff(cuts, prepend=0, append=len(members))
        if sizes.min() >= min_size:
            chosen = [rng.permutation(np.concatenate(part)) for part in parts]
            return [(xs[idx], ys[idx]) for idx in chosen]
    raise InvalidInput(
        f"no Dirichlet(alpha={alpha}) split gave all {num_clients} clients at least {min_size} "
        f"samples in {max_attempts} attempts; raise alpha or lower min_size or num_clients"
    )


# --- FedProx Synthetic(α, β) ----------------------------------------------------------------


@dataclass(frozen=True)
class _Device:
    """One synthetic device: float64 samples as drawn, labels, and the model that labelled them."""

    x: NDArray[np.float64]
    y: NDArray[np.int64]
    w: NDArray[np.float64]
    b: NDArray[np.float64]


def synthetic(
    alpha: float, beta: float, *, iid: bool = False, num_devices: int = 30, seed: int
) -> list[tuple[NDArray[np.float32], NDArray[np.int64]]]:
    """The FedProx Synthetic(α, β) data: one ``(x float32 [n, 60], y int64 [n])`` per device.

    α controls how much the local models differ, β how much the local inputs differ. Each device
    gets ``lognormal(4, 2)`` (truncated to int) + 50 samples; its model is ``W ~ N(u, 1)``
    [60, 10], ``b ~ N(u, 1)`` [10] with ``u ~ N(0, α)``; its inputs ``x ~ N(v, Σ)`` with
    ``v_j ~ N(B, 1)``, ``B ~ N(0, β)`` and ``Σ = diag(j^-1.2)``; labels are
    ``argmax(softmax(x W + b))``. With ``iid=True`` all devices share one ``W, b ~ N(0, 1)`` and
    ``v = B·1`` (the script's ``iid == 1`` branch; Synthetic-IID is α = β = 0).

    The random draws are those of the authors' ``generate_synthetic(alpha, beta, iid)`` (in
    ``data/synthetic_0_0`` and ``synthetic_0.5_0.5``; ``synthetic_1_1`` holds its non-IID branch
    alone), in the same order, from a legacy ``np.random.RandomState(seed)``: the arrays equal
    what that script draws after ``np.random.seed(seed)`` (it never seeds), ``x`` cast to
    float32. Their ``synthetic_iid/generate_iid.py`` draws the distribution of ``iid=True`` with
    α = β = 0 but skips the draws of ``u``, ``B`` and the per-device ``W, b``, so its stream
    differs. Only the per-sample label loop is vectorized, keeping their softmax arithmetic:
    where ``exp`` overflows (logits above ~709) their label is not the argmax of the logits.
    """
    devices = _synthetic_devices(alpha, beta, iid=iid, num_devices=num_devices, seed=seed)
    return [(device.x.astype(np.float32), device.y) for device in devices]


def _synthetic_devices(
    alpha: float, beta: float, *, iid: bool, num_devices: int, seed: int
) -> list[_Device]:
    if alpha < 0 or beta < 0:
        raise InvalidInput(
            f"Synthetic alpha and beta are standard deviations (>= 0), got {alpha}, {beta}"
        )
    if num_devices < 1:
        raise InvalidInput(f"num_devices must be at least 1, got {num_devices}")
    d, k = SYNTHETIC_FEATURES, SYNTHETIC_CLASSES
    rs = np.random.RandomState(seed)  # the legacy stream their np.random.* calls use
    samples = rs.lognormal(4, 2, num_devices).astype(int) + 50
    mean_w = rs.normal(0, alpha, num_devices)
    mean_b = mean_w  # sic: the script uses the same prior mean for W and b
    shift = rs.normal(0, beta, num_devices)
    cov_x = np.diag([np.power(j + 1, -1.2) for j in range(d)])
    mean_x = np.zeros((num_devices, d))
    for i in range(num_devices):
        mean_x[i] = np.ones(d) * shift[i] if iid else rs.normal(shift[i], 1, d)
    if iid:
        w_global = rs.normal(0, 1, (d, k))
        b_global = rs.normal(0, 1, k)
    devices = []
    for i in range(num_devices):
        # Drawn even when iid replaces them: the draws advance the stream, as in the script.
        w = rs.normal(mean_w[i], 1, (d, k))
        b = rs.normal(mean_b[i], 1, k)
        if iid:
            w, b = w_global, b_global
        x = rs.multivariate_normal(mean_x[i], cov_x, samples[i])
        devices.append(_Device(x, _softmax_argmax(x @ w + b), w, b))
    return devices


def _softmax_argmax(logits: NDArray[np.float64]) -> NDArray[np.int64]:
    """Row-wise ``argmax(softmax(row))`` computed as the script's ``softmax`` does.

    Where ``exp`` overflows, the script's probabilities are NaN and ``argmax`` picks the first
    NaN; keeping its arithmetic keeps its labels.
    """
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        ex = np.exp(logits)
        probabilities = ex / np.sum(ex, axis=1, keepdims=True)
    return np.asarray(np.argmax(probabilities, axis=1), dtype=np.int64)


def train_test_split_per_device(
    devices: Sequence[Part], *, test_fraction: float = 0.1, seed: int | None = None
) -> tuple[list[Part], list[Part]]:
    """Split each device into train and test as the FedProx script does: ``(train, test)``.

    Per device, in order, the script shuffles the samples with Python's global ``random``
    (``random.shuffle``, never seeded) and keeps the first ``int(0.9 * n)`` for training, the
    rest for testing. With ``seed``, one ``random.Random(seed)`` shuffles the devices in turn,
    which gives the permutations the script would after ``random.seed(seed)``. With
    ``seed=None`` nothing is shuffled: a synthetic device's rows are independent draws, so the
    split has the same distribution, and it is reproducible.
    """
    if not 0 <= test_fraction < 1:
        raise InvalidInput(f"test_fraction must be in [0, 1), got {test_fraction}")
    shuffler = None if seed is None else random.Random(seed)  # noqa: S311 - reproduces the script
    train: list[Part] = []
    test: list[Part] = []
    for x, y in devices:
        n = len(y)
        order = list(range(n))
        if shuffler is not None:
            shuffler.shuffle(order)  # the permutation depends only on n and the stream
        cut = int((1.0 - test_fraction) * n)  # 1.0 - 0.1 == 0.9 exactly, as in the script
        index = np.asarray(order, dtype=np.intp)
        train.append((x[index[:cut]], y[index[:cut]]))
        test.append((x[index[cut:]], y[index[cut:]]))
    return train, test
