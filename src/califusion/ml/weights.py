"""Model weights: named float32 tensors, their shapes, initialisation and wire format.

``Weights`` is an ordered ``dict[str, np.ndarray]`` of float32 arrays. The order is the
architecture's canonical order (see :func:`expected_shapes`), and :func:`flatten` /
:func:`unflatten` turn weights into one float32 vector in that order, which is what secure
aggregation and the server strategies work on. On the wire weights travel as safetensors bytes.

Layout: a dense layer's ``weight`` has shape ``(inputs, outputs)`` (``y = x @ W + b``).

=====================  =================================================================
architecture           tensors
=====================  =================================================================
linear_regression      ``weight`` (n_features, n_outputs), ``bias`` (n_outputs,)
logistic_regression    ``weight`` (n_features, n_classes), ``bias`` (n_classes,)
mlp                    ``layers.{i}.weight`` (fan_in, fan_out), ``layers.{i}.bias`` (fan_out,)
=====================  =================================================================
"""

from __future__ import annotations

import itertools
import json
import struct

import numpy as np
from numpy.typing import NDArray
from safetensors import SafetensorError
from safetensors.numpy import load as _st_load
from safetensors.numpy import save as _st_save

from califusion.core.errors import WeightsError
from califusion.ml.spec import LinearRegressionSpec, LogisticRegressionSpec, MLPSpec, ModelSpec

Weights = dict[str, NDArray[np.float32]]
"""Named float32 tensors in the architecture's canonical order."""

Shapes = dict[str, tuple[int, ...]]

MAX_METADATA_BYTES = 64 * 1024


def layer_sizes(spec: ModelSpec) -> list[int]:
    """The widths of every layer, input first: ``[n_features, *hidden, n_outputs]``."""
    arch = spec.architecture
    if isinstance(arch, LinearRegressionSpec):
        return [arch.n_features, arch.n_outputs]
    if isinstance(arch, LogisticRegressionSpec):
        return [arch.n_features, arch.n_classes]
    if isinstance(arch, MLPSpec):
        return [arch.n_features, *arch.hidden, arch.n_outputs]
    raise WeightsError(f"no weight layout for architecture {arch!r}")  # pragma: no cover


def expected_shapes(spec: ModelSpec) -> Shapes:
    """Tensor names and shapes of ``spec``'s architecture, in canonical order."""
    sizes = layer_sizes(spec)
    if not isinstance(spec.architecture, MLPSpec):
        return {"weight": (sizes[0], sizes[1]), "bias": (sizes[1],)}
    shapes: Shapes = {}
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        shapes[f"layers.{i}.weight"] = (fan_in, fan_out)
        shapes[f"layers.{i}.bias"] = (fan_out,)
    return shapes


def parameter_count(spec: ModelSpec) -> int:
    """How many scalars the model has (the length of :func:`flatten`'s vector)."""
    return sum(int(np.prod(shape)) for shape in expected_shapes(spec).values())


def init_weights(spec: ModelSpec) -> Weights:
    """Fresh weights, a pure function of ``spec`` (and so of ``spec.init_seed``).

    Dense kernels are Glorot-uniform (He-uniform for layers followed by a ReLU), biases zero —
    the defaults of Keras' ``Dense`` and of the FedProx reference code.
    """
    rng = np.random.default_rng(spec.init_seed)
    arch = spec.architecture
    relu = isinstance(arch, MLPSpec) and arch.activation == "relu"
    shapes = expected_shapes(spec)
    n_layers = len(shapes) // 2
    weights: Weights = {}
    for name, shape in shapes.items():
        if len(shape) == 1:
            weights[name] = np.zeros(shape, dtype=np.float32)
            continue
        fan_in, fan_out = shape
        followed_by_relu = relu and name != f"layers.{n_layers - 1}.weight"
        limit = np.sqrt(6.0 / fan_in) if followed_by_relu else np.sqrt(6.0 / (fan_in + fan_out))
        weights[name] = rng.uniform(-limit, limit, size=shape).astype(np.float32)
    return weights


def validate_weights(weights: Weights, spec: ModelSpec) -> None:
    """Raise :class:`WeightsError` unless ``weights`` fit ``spec`` exactly and are finite."""
    if not isinstance(weights, dict):
        raise WeightsError(f"weights must be a dict of arrays, got {type(weights).__name__}")
    expected = expected_shapes(spec)
    missing = [name for name in expected if name not in weights]
    extra = [name for name in weights if name not in expected]
    if missing or extra:
        raise WeightsError(
            f"weights do not match the model's tensors: missing {missing}, unexpected {extra}",
            missing=missing,
            unexpected=extra,
        )
    for name, shape in expected.items():
        tensor = weights[name]
        if not isinstance(tensor, np.ndarray):
            raise WeightsError(f"tensor {name!r} is a {type(tensor).__name__}, not an array")
        if tensor.shape != shape:
            raise WeightsError(
                f"tensor {name!r} has shape {tensor.shape}, expected {shape}",
                tensor=name,
                expected=list(shape),
                got=list(tensor.shape),
            )
        if tensor.dtype != np.float32:
            raise WeightsError(f"tensor {name!r} has dtype {tensor.dtype}, expected float32")
        if not np.isfinite(tensor).all():
            raise WeightsError(f"tensor {name!r} contains NaN or infinite values", tensor=name)


def to_safetensors(weights: Weights, metadata: dict[str, str] | None = None) -> bytes:
    """Serialise ``weights`` (and string ``metadata``) as safetensors bytes."""
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise WeightsError("safetensors metadata must map str to str")
    tensors = {name: np.ascontiguousarray(tensor) for name, tensor in weights.items()}
    try:
        return bytes(_st_save(tensors, metadata=metadata))
    except (SafetensorError, ValueError, TypeError) as exc:
        raise WeightsError(f"weights cannot be serialised: {exc}") from exc


def from_safetensors(data: bytes, spec: ModelSpec | None = None) -> tuple[Weights, dict[str, str]]:
    """Parse safetensors bytes into weights and metadata.

    With ``spec`` the weights are validated against it and put in canonical order; without it
    they come back in the file's order. Any malformed input raises :class:`WeightsError`.
    """
    try:
        tensors = _st_load(bytes(data))
        metadata = _read_metadata(data)
    except (SafetensorError, ValueError, TypeError, struct.error) as exc:
        raise WeightsError(f"not valid safetensors data: {exc}") from exc
    if spec is None:
        return dict(tensors), metadata
    validate_weights(tensors, spec)
    return {name: tensors[name] for name in expected_shapes(spec)}, metadata


def _read_metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` table of a safetensors header (the numpy loader drops it)."""
    (header_len,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_len])
    raw = header.get("__metadata__") or {}
    if len(json.dumps(raw)) > MAX_METADATA_BYTES:
        raise ValueError(f"metadata larger than {MAX_METADATA_BYTES} bytes")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in raw.items()):
        raise ValueError("metadata must map str to str")
    return dict(raw)


def flatten(weights: Weights) -> NDArray[np.float32]:
    """All tensors concatenated, in the dict's order, as one new float32 vector."""
    if not weights:
        raise WeightsError("cannot flatten empty weights")
    return np.concatenate([np.ravel(t) for t in weights.values()]).astype(np.float32, copy=False)


def unflatten(vector: NDArray[np.floating], spec: ModelSpec) -> Weights:
    """Inverse of :func:`flatten` for ``spec``'s canonical order (copies into float32)."""
    return unflatten_shapes(vector, expected_shapes(spec))


def unflatten_shapes(vector: NDArray[np.floating], shapes: Shapes) -> Weights:
    """Split ``vector`` into float32 tensors of ``shapes`` (in order)."""
    total = sum(int(np.prod(shape)) for shape in shapes.values())
    if vector.ndim != 1 or vector.size != total:
        raise WeightsError(
            f"a flat vector of {total} values is needed for these tensors, got shape {vector.shape}"
        )
    flat = np.asarray(vector, dtype=np.float32)
    out: Weights = {}
    offset = 0
    for name, shape in shapes.items():
        size = int(np.prod(shape))
        out[name] = flat[offset : offset + size].reshape(shape).copy()
        offset += size
    return out


def shapes_of(weights: Weights) -> Shapes:
    """The names and shapes of ``weights``, in order."""
    return {name: tuple(int(d) for d in tensor.shape) for name, tensor in weights.items()}


def global_norm(weights: Weights) -> float:
    """The L2 norm of all tensors taken together."""
    return float(np.sqrt(sum(float(np.vdot(t, t)) for t in weights.values())))


def subtract(a: Weights, b: Weights) -> Weights:
    """``a - b`` tensor by tensor (same names and shapes required)."""
    _same_layout(a, b)
    return {name: (a[name] - b[name]).astype(np.float32, copy=False) for name in a}


def add_scaled(a: Weights, b: Weights, scale: float) -> Weights:
    """``a + scale * b`` tensor by tensor (same names and shapes required)."""
    _same_layout(a, b)
    return {name: (a[name] + np.float32(scale) * b[name]).astype(np.float32) for name in a}


def _same_layout(a: Weights, b: Weights) -> None:
    if shapes_of(a) != shapes_of(b):
        raise WeightsError(
            f"weights differ in layout: {shapes_of(a)} versus {shapes_of(b)}",
        )
