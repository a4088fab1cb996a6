"""The allocation-free gradient kernel shared by every dense architecture.

Linear regression, multinomial logistic regression and the MLP are all stacks of dense layers
with an output head (identity + MSE, or softmax + cross-entropy). A :class:`DenseKernel` binds
views into one flat parameter vector and one flat gradient vector, preallocates every
intermediate for each batch size it meets and then computes mean-over-batch gradients in
place, so a training step is a dozen NumPy calls on small arrays and no Python work per element.

The flat layout stores each layer's ``weight`` (fan_in, fan_out) followed by its ``bias``
(fan_out,), which is exactly the row-major *augmented* matrix ``[W; b]`` of shape
(fan_in + 1, fan_out). Inputs therefore carry a trailing column of ones (:meth:`augment`), so
one matrix product computes ``x @ W + b`` and one computes both ``dW`` and ``db``.
"""

from __future__ import annotations

import itertools
from typing import Literal

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float32]
Head = Literal["softmax_ce", "mse"]
Activation = Literal["relu", "tanh"]

_row_max = np.maximum.reduce
_NAN = float("nan")


class _Workspace:
    """Preallocated intermediates for one batch size."""

    __slots__ = ("delta", "hidden", "hidden_aug", "mask", "ones", "out", "row", "scale")

    def __init__(self, batch: int, sizes: list[int]) -> None:
        widths = sizes[1:-1]
        # hidden activations with a trailing column of ones (the next layer's augmented input)
        self.hidden_aug = [np.ones((batch, width + 1), dtype=np.float32) for width in widths]
        self.hidden = [h[:, :-1] for h in self.hidden_aug]
        self.mask = [np.empty((batch, width), dtype=np.float32) for width in widths]
        self.out = np.empty((batch, sizes[-1]), dtype=np.float32)
        # delta[i]: (scaled) loss gradient w.r.t. layer i's output
        self.delta = [np.empty((batch, width), dtype=np.float32) for width in sizes[1:]]
        self.row = np.empty((batch, 1), dtype=np.float32)
        self.ones = np.ones((sizes[-1], 1), dtype=np.float32)  # row sums as a matrix product
        self.scale = np.float32(1.0)


class DenseKernel:
    """Mean-over-batch loss gradients of a dense network, computed in place.

    ``params`` and ``grad`` are flat float32 vectors in ``weights.flatten`` layout. The kernel
    keeps views into both: changing ``params`` in place changes the model it differentiates,
    and :meth:`run` overwrites ``grad`` with ``grad_scale ×`` the gradient of the mean loss.
    ``grad_scale`` is 1 unless set (a plain-SGD loop sets ``-learning_rate`` and just adds).
    """

    def __init__(
        self,
        sizes: list[int],
        params: Array,
        grad: Array,
        max_batch: int,
        *,
        head: Head,
        activation: Activation = "relu",
    ) -> None:
        self.sizes = sizes
        self.head: Head = head
        self.activation: Activation = activation
        self.max_batch = max_batch
        self._grad_scale = 1.0
        self.augmented: list[Array] = []  # [W; b] per layer, views into params
        self.weights: list[Array] = []  # W per layer (the first fan_in rows)
        self.grads: list[Array] = []  # [dW; db] per layer, views into grad
        offset = 0
        for fan_in, fan_out in itertools.pairwise(sizes):
            end = offset + (fan_in + 1) * fan_out
            self.augmented.append(params[offset:end].reshape(fan_in + 1, fan_out))
            self.weights.append(self.augmented[-1][:fan_in])
            self.grads.append(grad[offset:end].reshape(fan_in + 1, fan_out))
            offset = end
        if offset != params.size or offset != grad.size:
            raise ValueError(f"flat vectors must hold {offset} values")
        self._hidden_layers = len(self.augmented) - 1
        self._out_layer = self.augmented[-1]
        self._out_grad = self.grads[-1]
        self._softmax = head == "softmax_ce"
        self._spaces: dict[int, _Workspace] = {}
        self._full = self._workspace(max_batch)

    @property
    def grad_scale(self) -> float:
        return self._grad_scale

    @grad_scale.setter
    def grad_scale(self, value: float) -> None:
        self._grad_scale = value
        for batch, ws in self._spaces.items():
            ws.scale = self._scale_for(batch)

    def _scale_for(self, batch: int) -> np.float32:
        # cross-entropy averages over rows; MSE over rows and outputs of (z − t)², hence 2/(n·k)
        if self.head == "softmax_ce":
            return np.float32(self._grad_scale / batch)
        return np.float32(2.0 * self._grad_scale / (batch * self.sizes[-1]))

    def augment(self, x: Array) -> Array:
        """``x`` with a trailing column of ones: the input format of :meth:`run`."""
        out = np.ones((x.shape[0], x.shape[1] + 1), dtype=np.float32)
        out[:, :-1] = x
        return out

    def _workspace(self, batch: int) -> _Workspace:
        ws = self._spaces.get(batch)
        if ws is None:
            if not 0 < batch <= self.max_batch:
                raise ValueError(f"batch of {batch} rows; this kernel takes 1..{self.max_batch}")
            ws = self._spaces[batch] = _Workspace(batch, self.sizes)
            ws.scale = self._scale_for(batch)
        return ws

    def run(self, x_aug: Array, target: Array, want_loss: bool = False) -> float:
        """Write the scaled gradient for batch ``(x_aug, target)`` into ``grad``.

        ``x_aug`` comes from :meth:`augment`; ``target`` is one-hot float32 for the softmax
        head, float32 values for MSE. Returns the mean batch loss when ``want_loss``, else
        NaN (skipping its cost).
        """
        ws = self._full if x_aug.shape[0] == self.max_batch else self._workspace(x_aug.shape[0])
        inputs = self._forward_hidden(ws, x_aug) if self._hidden_layers else x_aug
        out, delta, row = ws.out, ws.delta[-1], ws.row
        np.dot(inputs, self._out_layer, out=out)
        loss = self._loss(out, target) if want_loss else _NAN
        # the head's gradient w.r.t. the outputs, inline: this is the hot path of every step
        if self._softmax:
            _row_max(out, axis=1, keepdims=True, out=row)  # stable softmax: shift rows by max
            np.subtract(out, row, out=delta)
            np.exp(delta, out=delta)
            np.dot(delta, ws.ones, out=row)
            delta /= row
            delta -= target
        else:
            np.subtract(out, target, out=delta)
        delta *= ws.scale
        np.dot(inputs.T, delta, out=self._out_grad)
        if self._hidden_layers:
            self._backward_hidden(ws, x_aug, delta)
        return loss

    def _forward_hidden(self, ws: _Workspace, x_aug: Array) -> Array:
        inputs = x_aug
        for i in range(self._hidden_layers):
            np.matmul(inputs, self.augmented[i], out=ws.hidden[i])  # np.dot needs C-order out
            self._activate(ws.hidden[i], ws.mask[i])
            inputs = ws.hidden_aug[i]
        return inputs

    def _backward_hidden(self, ws: _Workspace, x_aug: Array, delta: Array) -> None:
        for i in range(self._hidden_layers - 1, -1, -1):
            below = ws.delta[i]
            np.dot(delta, self.weights[i + 1].T, out=below)
            below *= ws.mask[i]
            delta = below
            np.dot((x_aug if i == 0 else ws.hidden_aug[i - 1]).T, delta, out=self.grads[i])

    def _activate(self, z: Array, mask: Array) -> None:
        """Apply the hidden activation in place; leave its derivative in ``mask``."""
        if self.activation == "relu":
            np.greater(z, 0.0, out=mask)
            z *= mask
        else:
            np.tanh(z, out=z)
            np.multiply(z, z, out=mask)
            np.subtract(1.0, mask, out=mask)

    def _loss(self, out: Array, target: Array) -> float:
        """Mean loss of the batch (allocates; only computed on request)."""
        rows = int(out.shape[0])
        return loss_sum(out, target, softmax=self._softmax) / rows


def loss_sum(out: Array, target: Array, *, softmax: bool) -> float:
    """Summed over rows: softmax cross-entropy (stable log-sum-exp) or mean-over-outputs MSE."""
    if softmax:
        shifted = out - out.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(axis=1))
        return float(np.sum(log_norm - np.einsum("ij,ij->i", shifted, target)))
    residual = out - target
    return float(np.vdot(residual, residual)) / int(out.shape[1])
