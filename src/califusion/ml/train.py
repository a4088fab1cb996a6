"""Local training: what a trainer runs on its own data each round.

:func:`train_local` runs minibatch training from the global weights for a number of epochs,
reshuffling every epoch, optionally with the FedProx proximal term
``μ/2·‖w − w_global‖²`` (gradient ``μ(w − w_global)``) and an L2 clip of the update
``w − w_global``. The step loop is the hot path: parameters, gradient and optimizer state are
flat preallocated vectors, each epoch's shuffled data is gathered into preallocated buffers
whose minibatch views are made once, and a step is a handful of in-place NumPy calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from califusion.core.errors import SpecError, WeightsError
from califusion.ml._dense import DenseKernel
from califusion.ml.models import evaluate, model_for
from califusion.ml.optim import SGD, Optimizer, make_optimizer
from califusion.ml.spec import ModelSpec
from califusion.ml.weights import Weights, flatten, unflatten, validate_weights

EpochOrder = Callable[[int], NDArray[np.integer]]
"""``order(epoch) -> permutation of range(rows)``: the sample order of one epoch."""


@dataclass(frozen=True, slots=True)
class LocalResult:
    """What local training hands back to the round.

    ``train_loss`` is the mean loss (without the proximal term) of the returned weights on the
    whole local training set.
    """

    weights: Weights
    num_samples: int
    train_loss: float
    epochs_done: int


def train_local(
    spec: ModelSpec,
    global_weights: Weights,
    x: NDArray[np.generic],
    y: NDArray[np.generic],
    *,
    epochs: int | None = None,
    rng: np.random.Generator,
    epoch_order: EpochOrder | None = None,
) -> LocalResult:
    """Train from ``global_weights`` on ``(x, y)`` and return the new local weights.

    ``epochs`` defaults to ``spec.training.local_epochs``; each epoch visits the rows in the
    order ``rng.permutation(rows)`` (or ``epoch_order(epoch)`` when given, to reproduce another
    system's batching) in minibatches of ``spec.training.batch_size``, the last one partial.
    Raises WeightsError for bad weights (or a diverged run), DataSchemaError for bad data and
    SpecError for fewer than one epoch.
    """
    training = spec.training
    n_epochs = training.local_epochs if epochs is None else epochs
    if n_epochs < 1:
        raise SpecError(f"local training needs at least one epoch, got {n_epochs}")
    validate_weights(global_weights, spec)
    model = model_for(spec)
    features = model.features(x)
    rows = features.shape[0]
    targets = model.targets(y, rows)
    batch = min(training.batch_size, rows)

    anchor = flatten(global_weights)
    params = anchor.copy()
    grad = np.empty_like(params)
    kernel = model.kernel(params, grad, batch)
    optimizer = make_optimizer(training.optimizer, params.size)
    features_aug = kernel.augment(features)

    # each epoch's shuffled copy of the data; the minibatches are fixed views into it
    shuffled_x = np.empty_like(features_aug)
    shuffled_t = np.empty_like(targets)
    batches = [
        (shuffled_x[start : start + batch], shuffled_t[start : start + batch])
        for start in range(0, rows, batch)
    ]
    run_epoch = _sgd_epoch if _is_plain_sgd(optimizer) else _optimizer_epoch
    state = _StepState(
        kernel, optimizer, params=params, anchor=anchor, grad=grad, mu=training.proximal_mu
    )
    # a diverging run overflows; it is reported once, below, as a WeightsError
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        for epoch in range(n_epochs):
            order = rng.permutation(rows) if epoch_order is None else epoch_order(epoch)
            order = _checked(order, rows)
            np.take(features_aug, order, axis=0, out=shuffled_x)
            np.take(targets, order, axis=0, out=shuffled_t)
            run_epoch(state, batches)

    if not np.isfinite(params).all():
        raise WeightsError("local training diverged (NaN or inf weights); lower the learning rate")
    if training.clip_norm is not None:
        clip_update(params, anchor, training.clip_norm)
    weights = unflatten(params, spec)
    loss = evaluate(spec, weights, features, y).loss
    return LocalResult(weights=weights, num_samples=rows, train_loss=loss, epochs_done=n_epochs)


class _StepState:
    """Everything an epoch of steps touches, bound once per training call."""

    __slots__ = ("anchor", "grad", "kernel", "mu", "optimizer", "params", "prox", "pull", "shrink")

    def __init__(
        self,
        kernel: DenseKernel,
        optimizer: Optimizer,
        *,
        params: NDArray[np.float32],
        anchor: NDArray[np.float32],
        grad: NDArray[np.float32],
        mu: float,
    ) -> None:
        self.kernel = kernel
        self.optimizer = optimizer
        self.params = params
        self.anchor = anchor
        self.grad = grad
        self.mu = np.float32(mu)
        self.prox = np.empty_like(params)
        lr = optimizer.learning_rate
        # plain SGD with the proximal term, fused:  w ← (1 − ημ)·w + ημ·w_global − η·g
        self.shrink = np.float32(1.0 - lr * mu)
        self.pull = (anchor * np.float32(lr * mu)).astype(np.float32)
        if _is_plain_sgd(optimizer):
            kernel.grad_scale = -lr


Batches = list[tuple[NDArray[np.float32], NDArray[np.float32]]]


def _is_plain_sgd(optimizer: Optimizer) -> bool:
    return isinstance(optimizer, SGD) and not optimizer.momentum and not optimizer.weight_decay


def _sgd_epoch(state: _StepState, batches: Batches) -> None:
    """One epoch of plain SGD; the kernel already writes ``-η·g`` into ``grad``."""
    run, params, grad = state.kernel.run, state.params, state.grad
    if state.mu:
        shrink, pull = state.shrink, state.pull
        for xb, tb in batches:
            run(xb, tb)
            params *= shrink
            params += pull
            params += grad
    else:
        for xb, tb in batches:
            run(xb, tb)
            params += grad


def _optimizer_epoch(state: _StepState, batches: Batches) -> None:
    """One epoch with any optimizer; the proximal gradient ``μ(w − w_global)`` is added."""
    run, step = state.kernel.run, state.optimizer.step
    params, anchor, grad, prox, mu = state.params, state.anchor, state.grad, state.prox, state.mu
    for xb, tb in batches:
        run(xb, tb)
        if mu:
            np.subtract(params, anchor, out=prox)
            prox *= mu
            grad += prox
        step(params, grad)


def clip_update(params: NDArray[np.float32], anchor: NDArray[np.float32], max_norm: float) -> float:
    """Scale ``params - anchor`` in place to L2 norm at most ``max_norm``; return the old norm."""
    delta = params - anchor
    norm = float(np.sqrt(np.vdot(delta, delta)))
    if norm > max_norm:
        delta *= np.float32(max_norm / norm)
        np.add(anchor, delta, out=params)
    return norm


def _checked(order: NDArray[np.integer], rows: int) -> NDArray[np.intp]:
    arr = np.asarray(order, dtype=np.intp)
    if arr.shape != (rows,) or arr.min() < 0 or arr.max() >= rows:
        raise SpecError(f"an epoch order must list {rows} row indices in [0, {rows})")
    return arr
