"""Server-side aggregation: turn a round's client weights into the next global model.

Every strategy first forms the sample-weighted mean of the clients' weights (float64
accumulation) and the pseudo-gradient ``Δ = mean − global``; they differ in the server step:

=========  ==================================================================================
name       server step
=========  ==================================================================================
fedavg     ``w ← w + η·Δ`` (η = 1: the weighted mean itself; McMahan et al. 2017)
fedprox    the same server rule; FedProx's μ is a client-side term (Li et al. 2020)
fedadam    ``m ← β1·m + (1−β1)·Δ;  v ← β2·v + (1−β2)·Δ²;  w ← w + η·m/(√v + τ)``
fedyogi    as fedadam but ``v ← v − (1−β2)·Δ²·sign(v − Δ²)``  (Reddi et al. 2021, Alg. 2)
=========  ==================================================================================

FedAdam/FedYogi start from ``m = 0`` and ``v = τ²`` (the paper's ``v₋₁ ≥ τ²``) and keep that
state in the object; :meth:`Strategy.state_dict` exports it as NumPy arrays so the publisher's
agent can persist it between rounds and :meth:`Strategy.load_state_dict` restores it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from califusion.core.errors import SpecError, WeightsError
from califusion.ml.weights import Weights, shapes_of, unflatten_shapes

Update = tuple[Weights, int]
"""A client's weights after local training and the number of samples it trained on."""

Vector = NDArray[np.float64]

_BLOCK_VALUES = 1 << 22  # clients are stacked in blocks of at most this many values


class Strategy(ABC):
    """Aggregates client updates into new global weights; may keep state across rounds."""

    name: ClassVar[str]

    def __init__(self, *, server_learning_rate: float = 1.0) -> None:
        if not server_learning_rate > 0:
            raise SpecError(f"server_learning_rate must be > 0, got {server_learning_rate}")
        self.server_learning_rate = server_learning_rate

    def aggregate(self, global_weights: Weights, updates: Sequence[Update]) -> Weights:
        """The next global weights from this round's ``(weights, num_samples)`` updates.

        Raises WeightsError for an empty round, a tensor layout that differs from
        ``global_weights``, a non-positive sample count or non-finite values.
        """
        shapes = shapes_of(global_weights)
        current = _flat(global_weights, shapes, "global weights")
        mean = weighted_mean(updates, shapes)
        return unflatten_shapes(self._step(current, mean), shapes)

    @abstractmethod
    def _step(self, current: Vector, mean: Vector) -> Vector:
        """New flat global weights from the current ones and the clients' weighted mean."""

    def state_dict(self) -> dict[str, NDArray[np.generic]]:
        """The strategy's state as named arrays (empty for stateless strategies)."""
        return {}

    def load_state_dict(self, state: dict[str, NDArray[np.generic]]) -> None:
        """Restore a state produced by :meth:`state_dict` of the same strategy."""
        if state:
            raise WeightsError(f"{self.name} keeps no state, got keys {sorted(state)}")


class FedAvg(Strategy):
    """Sample-weighted averaging, with an optional server learning rate."""

    name = "fedavg"

    def _step(self, current: Vector, mean: Vector) -> Vector:
        if self.server_learning_rate == 1.0:
            return mean
        return current + self.server_learning_rate * (mean - current)


class FedProx(FedAvg):
    """FedAvg's server rule; the proximal term μ lives in the clients' training spec."""

    name = "fedprox"


class FedAdam(Strategy):
    """Adaptive server optimizer with Adam's second-moment update."""

    name = "fedadam"

    def __init__(
        self,
        *,
        server_learning_rate: float = 1.0,
        beta1: float = 0.9,
        beta2: float = 0.99,
        tau: float = 1e-3,
    ) -> None:
        super().__init__(server_learning_rate=server_learning_rate)
        for label, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0.0 <= beta < 1.0:
                raise SpecError(f"{label} must lie in [0, 1), got {beta}")
        if not tau > 0:
            raise SpecError(f"tau must be > 0, got {tau}")
        self.beta1 = beta1
        self.beta2 = beta2
        self.tau = tau
        self.rounds = 0
        self._m: Vector | None = None
        self._v: Vector | None = None

    def _step(self, current: Vector, mean: Vector) -> Vector:
        delta = mean - current
        if self._m is None or self._v is None:
            self._m = np.zeros_like(delta)
            self._v = np.full_like(delta, self.tau**2)
        elif self._m.shape != delta.shape:
            raise WeightsError(
                f"{self.name} state holds {self._m.size} values but the model has {delta.size}"
            )
        self._m *= self.beta1
        self._m += (1.0 - self.beta1) * delta
        self._second_moment(self._v, delta * delta)
        self.rounds += 1
        return current + self.server_learning_rate * self._m / (np.sqrt(self._v) + self.tau)

    def _second_moment(self, v: Vector, delta_sq: Vector) -> None:
        v *= self.beta2
        v += (1.0 - self.beta2) * delta_sq

    def state_dict(self) -> dict[str, NDArray[np.generic]]:
        if self._m is None or self._v is None:
            return {}
        return {"m": self._m.copy(), "v": self._v.copy(), "rounds": np.array([self.rounds])}

    def load_state_dict(self, state: dict[str, NDArray[np.generic]]) -> None:
        if not state:
            self._m = self._v = None
            self.rounds = 0
            return
        if set(state) != {"m", "v", "rounds"}:
            raise WeightsError(f"{self.name} state needs keys m, v, rounds; got {sorted(state)}")
        m = np.asarray(state["m"], dtype=np.float64)
        v = np.asarray(state["v"], dtype=np.float64)
        if m.ndim != 1 or m.shape != v.shape:
            raise WeightsError(f"{self.name} state m and v must be vectors of one length")
        if not (np.isfinite(m).all() and np.isfinite(v).all() and (v >= 0).all()):
            raise WeightsError(f"{self.name} state must be finite with v >= 0")
        self._m, self._v = m.copy(), v.copy()
        self.rounds = int(np.asarray(state["rounds"]).ravel()[0])


class FedYogi(FedAdam):
    """FedAdam with Yogi's additive, sign-controlled second-moment update."""

    name = "fedyogi"

    def _second_moment(self, v: Vector, delta_sq: Vector) -> None:
        v -= (1.0 - self.beta2) * delta_sq * np.sign(v - delta_sq)


STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls for cls in (FedAvg, FedProx, FedAdam, FedYogi)
}


def strategy_for(
    name: str,
    *,
    server_learning_rate: float = 1.0,
    beta1: float = 0.9,
    beta2: float = 0.99,
    tau: float = 1e-3,
) -> Strategy:
    """A fresh strategy by name; the adaptive parameters are ignored by FedAvg/FedProx."""
    cls = STRATEGIES.get(name)
    if cls is None:
        raise SpecError(f"unknown aggregation strategy {name!r}; known: {sorted(STRATEGIES)}")
    if issubclass(cls, FedAdam):
        return cls(server_learning_rate=server_learning_rate, beta1=beta1, beta2=beta2, tau=tau)
    return cls(server_learning_rate=server_learning_rate)


def weighted_mean(updates: Sequence[Update], shapes: dict[str, tuple[int, ...]]) -> Vector:
    """The sample-weighted mean of the updates as one flat float64 vector.

    Clients are stacked in blocks (bounded memory) and each block is reduced with one
    matrix-vector product.
    """
    if not updates:
        raise WeightsError("cannot aggregate a round without updates")
    counts = np.array([_sample_count(n, i) for i, (_, n) in enumerate(updates)], dtype=np.float64)
    fractions = counts / counts.sum()
    size = sum(int(np.prod(s)) for s in shapes.values())
    per_block = max(1, _BLOCK_VALUES // max(size, 1))
    mean = np.zeros(size, dtype=np.float64)
    for start in range(0, len(updates), per_block):
        block = np.stack(
            [
                _flat(weights, shapes, f"update {start + j}")
                for j, (weights, _) in enumerate(updates[start : start + per_block])
            ]
        )
        mean += fractions[start : start + per_block] @ block
    return mean


def _sample_count(n: object, index: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n <= 0:
        raise WeightsError(f"update {index}: num_samples must be a positive integer, got {n!r}")
    return int(n)


def _flat(weights: Weights, shapes: dict[str, tuple[int, ...]], what: str) -> Vector:
    """``weights`` as one float64 vector in ``shapes``' order, after checking the layout."""
    if not isinstance(weights, dict) or set(weights) != set(shapes):
        got = sorted(weights) if isinstance(weights, dict) else type(weights).__name__
        raise WeightsError(f"{what}: tensors {got} differ from the model's {sorted(shapes)}")
    parts = []
    for name, shape in shapes.items():
        tensor = np.asarray(weights[name])
        if tensor.shape != shape:
            raise WeightsError(
                f"{what}: tensor {name!r} has shape {tensor.shape}, expected {shape}",
                tensor=name,
                expected=list(shape),
                got=list(tensor.shape),
            )
        if not np.issubdtype(tensor.dtype, np.floating):
            raise WeightsError(f"{what}: tensor {name!r} has dtype {tensor.dtype}, not float")
        parts.append(tensor.ravel())
    flat = np.concatenate(parts).astype(np.float64)
    if not np.isfinite(flat).all():
        raise WeightsError(f"{what} contain NaN or infinite values")
    return flat
