"""NumPy models: forward pass, analytic gradients, prediction and evaluation.

Every architecture of :mod:`califusion.ml.spec` is a stack of dense layers with a head:

=====================  ==========================  =======================================
kind                   hidden layers               head / loss
=====================  ==========================  =======================================
linear_regression      none                        identity, mean squared error
logistic_regression    none                        softmax, cross-entropy (log-sum-exp)
mlp                    ``hidden``, relu or tanh    softmax-CE (classification) or MSE
=====================  ==========================  =======================================

MSE is the mean over samples *and* outputs of the squared error; cross-entropy the mean over
samples. :func:`model_for` is the registry; a spec names an architecture, never code.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from califusion.core.errors import DataSchemaError, SpecError
from califusion.ml._dense import Activation, Array, DenseKernel, Head
from califusion.ml._dense import loss_sum as _loss_sum
from califusion.ml.spec import MLPSpec, ModelSpec
from califusion.ml.weights import (
    Weights,
    expected_shapes,
    flatten,
    layer_sizes,
    unflatten,
    validate_weights,
)

_EVAL_CHUNK = 8192


@dataclass(frozen=True, slots=True)
class Metrics:
    """Loss (and accuracy for classifiers) of a model on a data set."""

    loss: float
    accuracy: float | None
    samples: int
    correct: int | None = None


class Model:
    """A dense architecture bound to a spec. Stateless: weights are always passed in."""

    kind: ClassVar[str] = ""
    default_head: ClassVar[Head] = "mse"

    def __init__(self, spec: ModelSpec) -> None:
        if spec.architecture.kind != self.kind:
            raise SpecError(f"{type(self).__name__} cannot run a {spec.architecture.kind!r} spec")
        self.spec = spec
        self.sizes = layer_sizes(spec)
        self.shapes = expected_shapes(spec)
        self.activation: Activation = "relu"
        self.head: Head = self.default_head

    @property
    def n_features(self) -> int:
        return self.sizes[0]

    @property
    def n_outputs(self) -> int:
        return self.sizes[-1]

    @property
    def is_classifier(self) -> bool:
        return self.head == "softmax_ce"

    # ---- data ---------------------------------------------------------------------------

    def features(self, x: NDArray[np.generic]) -> Array:
        """``x`` as a C-contiguous float32 matrix, checked against the architecture."""
        arr = np.asarray(x)
        if arr.ndim != 2 or arr.shape[1] != self.n_features:
            raise DataSchemaError(
                f"features must have shape (rows, {self.n_features}), got {arr.shape}"
            )
        if arr.shape[0] == 0:
            raise DataSchemaError("no rows of data")
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
            raise DataSchemaError(f"features must be real numbers, got dtype {arr.dtype}")
        out = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(out).all():
            raise DataSchemaError("features contain NaN or infinite values (or overflow float32)")
        return out

    def targets(self, y: NDArray[np.generic], rows: int) -> Array:
        """Training targets: one-hot float32 for classifiers, float32 ``(rows, k)`` otherwise."""
        arr = np.asarray(y)
        if arr.shape[:1] != (rows,):
            raise DataSchemaError(f"{rows} feature rows but labels of shape {arr.shape}")
        if self.is_classifier:
            labels = self.labels(arr)
            onehot = np.zeros((rows, self.n_outputs), dtype=np.float32)
            onehot[np.arange(rows), labels] = 1.0
            return onehot
        if arr.ndim == 1:
            arr = arr.reshape(rows, 1)
        if arr.shape != (rows, self.n_outputs):
            raise DataSchemaError(
                f"regression targets must have shape ({rows}, {self.n_outputs}), got {arr.shape}"
            )
        out = np.ascontiguousarray(arr, dtype=np.float32)
        if not np.isfinite(out).all():
            raise DataSchemaError("regression targets contain NaN or infinite values")
        return out

    def labels(self, y: NDArray[np.generic]) -> NDArray[np.int64]:
        """Class labels as int64 in ``[0, n_classes)``; integral floats are accepted."""
        arr = np.asarray(y)
        if arr.ndim != 1:
            raise DataSchemaError(f"class labels must be a vector, got shape {arr.shape}")
        if np.issubdtype(arr.dtype, np.floating):
            if not (np.isfinite(arr).all() and (arr == np.round(arr)).all()):
                raise DataSchemaError("class labels must be whole numbers")
        elif not np.issubdtype(arr.dtype, np.integer):
            raise DataSchemaError(f"class labels must be integers, got dtype {arr.dtype}")
        labels = arr.astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= self.n_outputs):
            raise DataSchemaError(
                f"class labels must lie in [0, {self.n_outputs}), got range "
                f"[{labels.min()}, {labels.max()}]"
            )
        return labels

    # ---- computation --------------------------------------------------------------------

    def kernel(self, params: Array, grad: Array, max_batch: int) -> DenseKernel:
        """An in-place gradient kernel over flat ``params``/``grad`` (see ``DenseKernel``)."""
        return DenseKernel(
            self.sizes, params, grad, max_batch, head=self.head, activation=self.activation
        )

    def forward(self, weights: Weights, x: NDArray[np.generic]) -> Array:
        """Raw outputs: logits for classifiers, predictions for regression."""
        validate_weights(weights, self.spec)
        return self._forward(list(weights.values()), self.features(x))

    def _forward(self, tensors: list[Array], x: Array) -> Array:
        out = x
        n_layers = len(tensors) // 2
        for i in range(n_layers):
            out = out @ tensors[2 * i] + tensors[2 * i + 1]
            if i < n_layers - 1:
                out = np.maximum(out, 0.0) if self.activation == "relu" else np.tanh(out)
        return out

    def predict(self, weights: Weights, x: NDArray[np.generic]) -> NDArray[np.generic]:
        """Class indices (int64) for classifiers, outputs ``(rows, k)`` for regression."""
        out = self.forward(weights, x)
        return np.argmax(out, axis=1) if self.is_classifier else out

    def loss_and_grad(
        self, weights: Weights, x: NDArray[np.generic], y: NDArray[np.generic]
    ) -> tuple[float, Weights]:
        """Mean loss on ``(x, y)`` and its analytic gradient, tensor by tensor."""
        validate_weights(weights, self.spec)
        xs = self.features(x)
        target = self.targets(y, xs.shape[0])
        params = flatten(weights)
        grad = np.empty_like(params)
        kernel = self.kernel(params, grad, xs.shape[0])
        loss = kernel.run(kernel.augment(xs), target, want_loss=True)
        return loss, unflatten(grad, self.spec)

    def loss(self, weights: Weights, x: NDArray[np.generic], y: NDArray[np.generic]) -> float:
        """Mean loss of ``weights`` on ``(x, y)``."""
        return evaluate(self.spec, weights, x, y).loss


class LinearRegression(Model):
    kind = "linear_regression"
    default_head = "mse"


class LogisticRegression(Model):
    kind = "logistic_regression"
    default_head = "softmax_ce"


class MLP(Model):
    kind = "mlp"

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec)
        arch = spec.architecture
        assert isinstance(arch, MLPSpec)
        self.activation = arch.activation
        self.head = "softmax_ce" if arch.task == "classification" else "mse"


MODELS: dict[str, type[Model]] = {
    cls.kind: cls for cls in (LinearRegression, LogisticRegression, MLP)
}


def model_for(spec: ModelSpec) -> Model:
    """The implementation of ``spec.architecture.kind``; unknown kinds are a SpecError."""
    kind = getattr(spec.architecture, "kind", None)
    cls = MODELS.get(str(kind))
    if cls is None:
        raise SpecError(f"unknown architecture {kind!r}; known: {sorted(MODELS)}")
    return cls(spec)


def evaluate(
    spec: ModelSpec, weights: Weights, x: NDArray[np.generic], y: NDArray[np.generic]
) -> Metrics:
    """Mean loss, and accuracy for classifiers, of ``weights`` on ``(x, y)``."""
    model = model_for(spec)
    validate_weights(weights, spec)
    xs = model.features(x)
    rows = xs.shape[0]
    tensors = list(weights.values())
    labels = model.labels(np.asarray(y)) if model.is_classifier else None
    target = model.targets(y, rows)
    loss_sum = 0.0
    correct = 0
    for start in range(0, rows, _EVAL_CHUNK):
        stop = min(start + _EVAL_CHUNK, rows)
        out = model._forward(tensors, xs[start:stop])
        loss_sum += _loss_sum(out, target[start:stop], softmax=model.is_classifier)
        if labels is not None:
            correct += int(np.count_nonzero(np.argmax(out, axis=1) == labels[start:stop]))
    if labels is None:
        return Metrics(loss=loss_sum / rows, accuracy=None, samples=rows)
    return Metrics(loss=loss_sum / rows, accuracy=correct / rows, samples=rows, correct=correct)
