"""The declarative model spec and data schema.

A publisher describes a model with data, never code: an architecture chosen from a fixed
registry, its training hyper-parameters and the schema the trainers' data must follow. Everything
is validated here with pydantic; a trainer's machine only ever instantiates architectures
implemented in ``califusion.ml``.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from califusion.core.errors import SpecError

MAX_SPEC_BYTES = 256 * 1024


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LinearRegressionSpec(_Strict):
    kind: Literal["linear_regression"] = "linear_regression"
    n_features: int = Field(ge=1, le=100_000)
    n_outputs: int = Field(default=1, ge=1, le=1_000)


class LogisticRegressionSpec(_Strict):
    """Multinomial logistic regression (softmax over ``n_classes``)."""

    kind: Literal["logistic_regression"] = "logistic_regression"
    n_features: int = Field(ge=1, le=100_000)
    n_classes: int = Field(ge=2, le=10_000)


class MLPSpec(_Strict):
    kind: Literal["mlp"] = "mlp"
    n_features: int = Field(ge=1, le=100_000)
    hidden: list[Annotated[int, Field(ge=1, le=8192)]] = Field(min_length=1, max_length=8)
    activation: Literal["relu", "tanh"] = "relu"
    task: Literal["classification", "regression"] = "classification"
    n_outputs: int = Field(ge=1, le=10_000, description="classes, or regression targets")

    @model_validator(mode="after")
    def _classes(self) -> MLPSpec:
        if self.task == "classification" and self.n_outputs < 2:
            raise ValueError("a classification MLP needs n_outputs >= 2 classes")
        return self


Architecture = Annotated[
    LinearRegressionSpec | LogisticRegressionSpec | MLPSpec, Field(discriminator="kind")
]


class SGDSpec(_Strict):
    name: Literal["sgd"] = "sgd"
    learning_rate: float = Field(gt=0, le=10)
    momentum: float = Field(default=0.0, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0, le=1)


class AdamSpec(_Strict):
    name: Literal["adam"] = "adam"
    learning_rate: float = Field(gt=0, le=10)
    beta1: float = Field(default=0.9, ge=0, lt=1)
    beta2: float = Field(default=0.999, ge=0, lt=1)
    eps: float = Field(default=1e-8, gt=0, le=1)
    weight_decay: float = Field(default=0.0, ge=0, le=1)


Optimizer = Annotated[SGDSpec | AdamSpec, Field(discriminator="name")]


class TrainingSpec(_Strict):
    """What a trainer does locally each round."""

    loss: Literal["mse", "cross_entropy"]
    optimizer: Optimizer
    local_epochs: int = Field(ge=1, le=1_000)
    batch_size: int = Field(ge=1, le=65_536)
    proximal_mu: float = Field(default=0.0, ge=0, le=1_000, description="FedProx μ; 0 is FedAvg")
    clip_norm: float | None = Field(default=None, gt=0, description="clip the update's L2 norm")


class ModelSpec(_Strict):
    architecture: Architecture
    training: TrainingSpec
    init_seed: int = Field(default=0, ge=0, le=2**63 - 1)

    @model_validator(mode="after")
    def _coherent(self) -> ModelSpec:
        arch = self.architecture
        loss = self.training.loss
        if isinstance(arch, LinearRegressionSpec) and loss != "mse":
            raise ValueError("linear_regression trains with loss 'mse'")
        if isinstance(arch, LogisticRegressionSpec) and loss != "cross_entropy":
            raise ValueError("logistic_regression trains with loss 'cross_entropy'")
        if isinstance(arch, MLPSpec):
            wanted = "cross_entropy" if arch.task == "classification" else "mse"
            if loss != wanted:
                raise ValueError(f"an MLP for {arch.task} trains with loss {wanted!r}")
        return self

    @property
    def task(self) -> Literal["classification", "regression"]:
        arch = self.architecture
        if isinstance(arch, LogisticRegressionSpec):
            return "classification"
        if isinstance(arch, MLPSpec):
            return arch.task
        return "regression"


class Column(_Strict):
    name: str = Field(min_length=1, max_length=128)
    dtype: Literal["float32", "float64", "int32", "int64"] = "float32"
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _range(self) -> Column:
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"column {self.name!r}: min {self.min} is above max {self.max}")
        return self


class LabelSpec(_Strict):
    name: str = Field(min_length=1, max_length=128)
    dtype: Literal["int32", "int64", "float32", "float64"] = "int64"
    n_classes: int | None = Field(default=None, ge=2, le=10_000, description="labels in [0, n)")


class DataSchema(_Strict):
    """The columns a trainer's local data must have. NPZ files map columns by position."""

    features: list[Column] = Field(min_length=1, max_length=100_000)
    label: LabelSpec
    min_rows: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _unique(self) -> DataSchema:
        names = [c.name for c in self.features] + [self.label.name]
        if len(set(names)) != len(names):
            raise ValueError("column names must be unique (features and label)")
        return self


def _parse(model: type[BaseModel], text: str, fmt: Literal["json", "toml"]) -> Any:
    if len(text.encode()) > MAX_SPEC_BYTES:
        raise SpecError(f"spec is larger than {MAX_SPEC_BYTES} bytes")
    try:
        raw = json.loads(text) if fmt == "json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SpecError(f"spec is not valid {fmt.upper()}: {exc}") from exc
    return validate_spec(model, raw)


def validate_spec(model: type[BaseModel], raw: Any) -> Any:
    """Validate ``raw`` as ``model``; a failure is a :class:`SpecError` naming each field."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        errors = {
            ".".join(str(p) for p in err["loc"]) or "(root)": err["msg"] for err in exc.errors()
        }
        listing = "; ".join(f"{k}: {v}" for k, v in errors.items())
        raise SpecError(f"invalid {model.__name__}: {listing}", **errors) from exc


def load_spec_file(model: type[BaseModel], path: Path) -> Any:
    """Load a JSON (``.json``) or TOML (``.toml``) spec file."""
    if path.suffix not in {".json", ".toml"}:
        raise SpecError(f"{path}: a spec file is .json or .toml")
    try:
        if path.stat().st_size > MAX_SPEC_BYTES:
            raise SpecError(f"{path}: spec is larger than {MAX_SPEC_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read spec ({exc.strerror})") from exc
    return _parse(model, text, "json" if path.suffix == ".json" else "toml")
