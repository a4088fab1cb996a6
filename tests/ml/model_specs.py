"""Small model specs shared by the ml tests."""

from __future__ import annotations

from typing import Any

from califusion.ml.spec import ModelSpec


def spec(architecture: dict[str, Any], **training: Any) -> ModelSpec:
    """A validated spec; ``training`` overrides the defaults (SGD 0.1, 1 epoch, batch 8)."""
    loss = "mse"
    if architecture["kind"] == "logistic_regression" or (
        architecture["kind"] == "mlp" and architecture.get("task", "classification") != "regression"
    ):
        loss = "cross_entropy"
    train: dict[str, Any] = {
        "loss": loss,
        "optimizer": {"name": "sgd", "learning_rate": 0.1},
        "local_epochs": 1,
        "batch_size": 8,
    }
    train.update(training)
    init_seed = train.pop("init_seed", 0)
    return ModelSpec.model_validate(
        {"architecture": architecture, "training": train, "init_seed": init_seed}
    )


def linear(n_features: int = 4, n_outputs: int = 2, **training: Any) -> ModelSpec:
    arch = {"kind": "linear_regression", "n_features": n_features, "n_outputs": n_outputs}
    return spec(arch, **training)


def logistic(n_features: int = 5, n_classes: int = 3, **training: Any) -> ModelSpec:
    arch = {"kind": "logistic_regression", "n_features": n_features, "n_classes": n_classes}
    return spec(arch, **training)


def mlp(
    n_features: int = 4,
    hidden: tuple[int, ...] = (6, 5),
    n_outputs: int = 3,
    activation: str = "relu",
    task: str = "classification",
    **training: Any,
) -> ModelSpec:
    arch = {
        "kind": "mlp",
        "n_features": n_features,
        "hidden": list(hidden),
        "n_outputs": n_outputs,
        "activation": activation,
        "task": task,
    }
    return spec(arch, **training)
