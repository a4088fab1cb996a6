"""Local optimizers: SGD (momentum, weight decay) and Adam (bias-corrected).

Optimizers work on the flat float32 parameter vector that training keeps (one slice per tensor,
see ``weights.flatten``), so one step is a few in-place NumPy calls however many tensors the
model has, and their state (momentum buffer, Adam moments) is a vector of the same layout —
``weights.unflatten`` gives it back tensor by tensor. :meth:`Optimizer.step` updates ``params``
in place and may overwrite ``grad`` (it is scratch space to the caller).

Update rules (PyTorch's conventions, L2 weight decay added to the gradient):

* SGD: ``g += wd·w;  b = μ·b + g (b = g at the first step);  w -= lr·b``
* Adam: ``g += wd·w;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
  w -= lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + ε)``
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np
from numpy.typing import NDArray

from califusion.core.errors import SpecError
from califusion.ml.spec import AdamSpec, SGDSpec

Array = NDArray[np.float32]


class Optimizer(ABC):
    """Updates a flat parameter vector of a fixed ``size`` in place."""

    def __init__(self, size: int, learning_rate: float, weight_decay: float) -> None:
        self.size = size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self._scratch = np.empty(size, dtype=np.float32)

    @abstractmethod
    def step(self, params: Array, grad: Array) -> None:
        """Apply one update to ``params`` from ``grad`` (which may be overwritten)."""

    @abstractmethod
    def state_dict(self) -> dict[str, NDArray[np.generic]]:
        """The optimizer state as named arrays (copies)."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, NDArray[np.generic]]) -> None:
        """Restore a state produced by :meth:`state_dict`."""

    def _decay(self, params: Array, grad: Array) -> None:
        if self.weight_decay:
            np.multiply(params, np.float32(self.weight_decay), out=self._scratch)
            grad += self._scratch

    def _vector(self, state: dict[str, NDArray[np.generic]], key: str) -> Array:
        value = state.get(key)
        if value is None or value.shape != (self.size,):
            raise SpecError(f"optimizer state {key!r} must be a vector of {self.size} values")
        return np.array(value, dtype=np.float32)


class SGD(Optimizer):
    """Stochastic gradient descent with optional heavy-ball momentum and weight decay."""

    def __init__(
        self, size: int, learning_rate: float, momentum: float = 0.0, weight_decay: float = 0.0
    ) -> None:
        super().__init__(size, learning_rate, weight_decay)
        self.momentum = momentum
        self._lr = np.float32(learning_rate)
        self._buffer = np.zeros(size, dtype=np.float32) if momentum else None
        self._started = False

    def step(self, params: Array, grad: Array) -> None:
        self._decay(params, grad)
        if self._buffer is None:
            grad *= self._lr
            params -= grad
            return
        if self._started:
            self._buffer *= np.float32(self.momentum)
            self._buffer += grad
        else:
            self._buffer[:] = grad
            self._started = True
        np.multiply(self._buffer, self._lr, out=self._scratch)
        params -= self._scratch

    def state_dict(self) -> dict[str, NDArray[np.generic]]:
        if self._buffer is None:
            return {}
        return {"momentum": self._buffer.copy(), "started": np.array([int(self._started)])}

    def load_state_dict(self, state: dict[str, NDArray[np.generic]]) -> None:
        if self._buffer is None:
            return
        self._buffer = self._vector(state, "momentum")
        self._started = bool(np.asarray(state.get("started", [1])).ravel()[0])


class Adam(Optimizer):
    """Adam with bias correction (Kingma & Ba 2015), L2 weight decay in the gradient."""

    def __init__(
        self,
        size: int,
        learning_rate: float,
        *,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        super().__init__(size, learning_rate, weight_decay)
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.steps = 0
        self._m = np.zeros(size, dtype=np.float32)
        self._v = np.zeros(size, dtype=np.float32)

    def step(self, params: Array, grad: Array) -> None:
        self._decay(params, grad)
        self.steps += 1
        b1, b2 = self.beta1, self.beta2
        scratch = self._scratch
        self._m *= np.float32(b1)
        np.multiply(grad, np.float32(1.0 - b1), out=scratch)
        self._m += scratch
        self._v *= np.float32(b2)
        np.multiply(grad, grad, out=scratch)
        scratch *= np.float32(1.0 - b2)
        self._v += scratch
        step_size = self.learning_rate / (1.0 - b1**self.steps)
        np.sqrt(self._v, out=scratch)
        scratch *= np.float32(1.0 / math.sqrt(1.0 - b2**self.steps))
        scratch += np.float32(self.eps)
        np.divide(self._m, scratch, out=scratch)
        scratch *= np.float32(step_size)
        params -= scratch

    def state_dict(self) -> dict[str, NDArray[np.generic]]:
        return {"m": self._m.copy(), "v": self._v.copy(), "steps": np.array([self.steps])}

    def load_state_dict(self, state: dict[str, NDArray[np.generic]]) -> None:
        self._m = self._vector(state, "m")
        self._v = self._vector(state, "v")
        self.steps = int(np.asarray(state.get("steps", [0])).ravel()[0])


def make_optimizer(spec: SGDSpec | AdamSpec, size: int) -> Optimizer:
    """The optimizer a training spec names, for ``size`` parameters."""
    if isinstance(spec, SGDSpec):
        return SGD(size, spec.learning_rate, spec.momentum, spec.weight_decay)
    if isinstance(spec, AdamSpec):
        return Adam(
            size,
            spec.learning_rate,
            beta1=spec.beta1,
            beta2=spec.beta2,
            eps=spec.eps,
            weight_decay=spec.weight_decay,
        )
    raise SpecError(f"unknown optimizer {spec!r}")  # pragma: no cover
