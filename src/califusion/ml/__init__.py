"""Machine learning: model specs, weights, NumPy models, optimizers and local training.

Imports only ``califusion.core`` (and ``califusion.crypto``). Public API:

* ``spec``     ModelSpec and DataSchema, validated declaratively
* ``weights``  Weights (ordered float32 tensors), init, safetensors, flatten/unflatten
* ``models``   model_for(spec) -> Model (loss_and_grad, predict), evaluate -> Metrics
* ``optim``    SGD, Adam on flat parameter vectors
* ``train``    train_local -> LocalResult (FedProx term, update clipping)
"""

from califusion.ml.models import (
    MLP,
    LinearRegression,
    LogisticRegression,
    Metrics,
    Model,
    evaluate,
    model_for,
)
from califusion.ml.optim import SGD, Adam, Optimizer, make_optimizer
from califusion.ml.spec import DataSchema, ModelSpec
from califusion.ml.train import LocalResult, clip_update, train_local
from califusion.ml.weights import (
    Weights,
    add_scaled,
    expected_shapes,
    flatten,
    from_safetensors,
    global_norm,
    init_weights,
    parameter_count,
    shapes_of,
    subtract,
    to_safetensors,
    unflatten,
    unflatten_shapes,
    validate_weights,
)

__all__ = [
    "MLP",
    "SGD",
    "Adam",
    "DataSchema",
    "LinearRegression",
    "LocalResult",
    "LogisticRegression",
    "Metrics",
    "Model",
    "ModelSpec",
    "Optimizer",
    "Weights",
    "add_scaled",
    "clip_update",
    "evaluate",
    "expected_shapes",
    "flatten",
    "from_safetensors",
    "global_norm",
    "init_weights",
    "make_optimizer",
    "model_for",
    "parameter_count",
    "shapes_of",
    "subtract",
    "to_safetensors",
    "train_local",
    "unflatten",
    "unflatten_shapes",
    "validate_weights",
]
