"""The create-job form: text fields in, a validated :class:`JobSpec` or messages per field out.

Every message is placed beside the field it is about: the form's own parsing (a number that is
not a number, a feature list that names nothing) and the spec's validation (pydantic locations
are mapped back to form fields), so a person sees what to fix where they would fix it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from califusion.protocol import JobSpec
from califusion.web.present import parse_amount

__all__ = [
    "ARCHITECTURES",
    "LABELS",
    "MODES",
    "OPTIMIZERS",
    "STRATEGIES",
    "JobForm",
    "blank_form",
    "parse_job_form",
]

ARCHITECTURES = {
    "logistic_regression": "Logistic regression (classification)",
    "mlp_classifier": "MLP classifier",
    "mlp_regressor": "MLP regressor",
    "linear_regression": "Linear regression",
}
OPTIMIZERS = {"sgd": "SGD", "adam": "Adam"}
STRATEGIES = {"fedavg": "FedAvg", "fedprox": "FedProx", "fedadam": "FedAdam", "fedyogi": "FedYogi"}
MODES = {
    "secure": "Secure: the coordinator sums masked updates (SecAgg+)",
    "blind": "Blind: secure, and even the sum is padded for the coordinator",
    "publisher": "Publisher: each update sealed to this agent, which sums them",
}

LABELS = {
    "title": "Title",
    "features": "Feature columns",
    "label": "Label column",
    "n_classes": "Classes",
    "architecture": "Model",
    "hidden": "Hidden layers (MLP)",
    "optimizer": "Optimizer",
    "learning_rate": "Learning rate",
    "local_epochs": "Local epochs per round",
    "batch_size": "Batch size",
    "proximal_mu": "FedProx μ",
    "strategy": "Aggregation",
    "mode": "Who sees the updates",
    "rounds": "Rounds",
    "trainers_wanted": "Trainers wanted",
    "min_trainers_per_round": "Minimum trainers per round",
    "round_deadline_seconds": "Round deadline (seconds)",
    "reward_pool": "Reward pool",
    "stake": "Stake per trainer",
    "price": "Model access price",
    "validation": "Validation file on this machine",
    "description": "Description",
    "open_now": "Open to trainers right away",
}
"""What each field is called on the page (the error summary names fields with these)."""

DEFAULTS: dict[str, str] = {
    "title": "",
    "description": "",
    "architecture": "logistic_regression",
    "features": "",
    "label": "label",
    "n_classes": "",
    "hidden": "64",
    "optimizer": "sgd",
    "learning_rate": "0.01",
    "local_epochs": "1",
    "batch_size": "32",
    "proximal_mu": "0",
    "strategy": "fedavg",
    "mode": "secure",
    "rounds": "10",
    "trainers_wanted": "3",
    "min_trainers_per_round": "2",
    "round_deadline_seconds": "300",
    "reward_pool": "0",
    "stake": "0",
    "price": "",
    "validation": "",
    "open_now": "",
}
_INTS = (
    "n_classes",
    "local_epochs",
    "batch_size",
    "rounds",
    "trainers_wanted",
    "min_trainers_per_round",
)
_FLOATS = ("learning_rate", "proximal_mu", "round_deadline_seconds")
_AMOUNTS = ("reward_pool", "stake", "price")
_REPEAT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\*([0-9]{1,6})$")
# pydantic location keys → the form field that holds them
_LOCATIONS = {
    "n_features": "features",
    "features": "features",
    "n_classes": "n_classes",
    "n_outputs": "n_classes",
    "hidden": "hidden",
    "learning_rate": "learning_rate",
    "local_epochs": "local_epochs",
    "batch_size": "batch_size",
    "proximal_mu": "proximal_mu",
    "aggregation": "strategy",
    "aggregation_mode": "mode",
    "label": "label",
}


@dataclass
class JobForm:
    """The form as typed, its messages, and the spec once everything is valid."""

    values: dict[str, str] = field(default_factory=lambda: dict(DEFAULTS))
    errors: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)
    spec: JobSpec | None = None
    validation: Path | None = None

    @property
    def open_now(self) -> bool:
        return bool(self.values.get("open_now"))

    @property
    def ok(self) -> bool:
        return self.spec is not None and not self.errors and not self.general


def blank_form() -> JobForm:
    return JobForm()


def feature_names(text: str) -> list[str]:
    """``"x*3"`` → ``["x0", "x1", "x2"]``; ``"age, height"`` → ``["age", "height"]``."""
    text = text.strip()
    repeat = _REPEAT.match(text)
    if repeat:
        prefix, count = repeat.group(1), int(repeat.group(2))
        return [f"{prefix}{i}" for i in range(count)]
    return [name.strip() for name in text.split(",") if name.strip()]


def parse_job_form(raw: Mapping[str, Any], decimals: int) -> JobForm:
    """Parse and validate the submitted fields; messages come in the form's field order."""
    form = _parse(raw, decimals)
    form.errors = {name: form.errors[name] for name in DEFAULTS if name in form.errors}
    return form


def _parse(raw: Mapping[str, Any], decimals: int) -> JobForm:
    values = {name: str(raw.get(name, "") or "").strip() for name in DEFAULTS}
    values["description"] = str(raw.get("description", "") or "")
    form = JobForm(values=values)
    numbers: dict[str, Any] = {}
    for name in _INTS:
        if values[name] == "" and name == "n_classes":
            numbers[name] = None
            continue
        try:
            numbers[name] = int(values[name])
        except ValueError:
            form.errors[name] = "enter a whole number"
    for name in _FLOATS:
        try:
            numbers[name] = float(values[name])
        except ValueError:
            form.errors[name] = "enter a number, such as 0.01"
    for name in _AMOUNTS:
        if name == "price" and values[name] == "":
            numbers[name] = None
            continue
        try:
            numbers[name] = parse_amount(values[name], decimals)
        except ValueError as exc:
            form.errors[name] = str(exc)
    if not values["title"]:
        form.errors["title"] = "give the job a title"
    features = feature_names(values["features"])
    if not features:
        form.errors["features"] = "name the feature columns (a, b, c) or give PREFIX*N, e.g. x*60"
    try:
        hidden = [int(part) for part in values["hidden"].replace(" ", "").split(",") if part]
    except ValueError:
        form.errors["hidden"] = "layer widths separated by commas, e.g. 64,32"
        hidden = []
    kind = values["architecture"]
    if kind not in ARCHITECTURES:
        form.errors["architecture"] = "choose one of the listed models"
    if values["mode"] not in MODES:
        form.errors["mode"] = "choose one of the listed modes"
    classification = kind in {"logistic_regression", "mlp_classifier"}
    if classification and numbers.get("n_classes") is None and "n_classes" not in form.errors:
        form.errors["n_classes"] = "a classifier needs the number of classes (2 or more)"
    if kind in {"mlp_classifier", "mlp_regressor"} and not hidden and "hidden" not in form.errors:
        form.errors["hidden"] = "an MLP needs at least one hidden layer, e.g. 64"
    wanted, minimum = numbers.get("trainers_wanted"), numbers.get("min_trainers_per_round")
    if isinstance(wanted, int) and isinstance(minimum, int) and minimum > wanted:
        form.errors["min_trainers_per_round"] = f"cannot exceed trainers wanted ({wanted})"
    if values["validation"]:
        path = Path(values["validation"]).expanduser()
        if not path.is_absolute():
            form.errors["validation"] = "give the full path of the file on this machine"
        elif not path.is_file():
            form.errors["validation"] = f"no file at {path}"
        else:
            form.validation = path
    if form.errors:
        return form
    raw_spec = _raw_spec(values, numbers, features, hidden, classification)
    try:
        form.spec = JobSpec.model_validate(raw_spec)
    except ValidationError as exc:
        for error in exc.errors():
            target = _field_of(tuple(str(p) for p in error["loc"]))
            message = str(error["msg"]).removeprefix("Value error, ")
            if target is None:
                form.general.append(message)
            else:
                form.errors.setdefault(target, message)
    return form


def _raw_spec(
    values: dict[str, str],
    numbers: dict[str, Any],
    features: list[str],
    hidden: list[int],
    classification: bool,
) -> dict[str, Any]:
    kind = values["architecture"]
    n_classes = numbers["n_classes"]
    arch: dict[str, Any] = {"n_features": len(features)}
    if kind == "logistic_regression":
        arch.update(kind=kind, n_classes=n_classes)
    elif kind == "linear_regression":
        arch.update(kind=kind, n_outputs=1)
    else:
        task = "classification" if classification else "regression"
        arch.update(kind="mlp", hidden=hidden, task=task, n_outputs=n_classes or 1)
    return {
        "title": values["title"],
        "description": values["description"],
        "model": {
            "architecture": arch,
            "training": {
                "loss": "cross_entropy" if classification else "mse",
                "optimizer": {
                    "name": values["optimizer"],
                    "learning_rate": numbers["learning_rate"],
                },
                "local_epochs": numbers["local_epochs"],
                "batch_size": numbers["batch_size"],
                "proximal_mu": numbers["proximal_mu"],
            },
        },
        "data_schema": {
            "features": [{"name": name, "dtype": "float32"} for name in features],
            "label": {
                "name": values["label"],
                "dtype": "int64" if classification else "float32",
                "n_classes": n_classes if classification else None,
            },
        },
        "rounds": numbers["rounds"],
        "trainers_wanted": numbers["trainers_wanted"],
        "min_trainers_per_round": numbers["min_trainers_per_round"],
        "round_deadline_seconds": numbers["round_deadline_seconds"],
        "aggregation": {"name": values["strategy"]},
        "aggregation_mode": values["mode"],
        "reward_pool": numbers["reward_pool"],
        "stake": numbers["stake"],
        "price": numbers["price"],
    }


def _field_of(loc: tuple[str, ...]) -> str | None:
    """The form field a pydantic error location belongs to (None: the form as a whole)."""
    if not loc:
        return None
    if loc[0] in DEFAULTS:
        return loc[0]
    if loc[0] == "aggregation":
        return "strategy"
    if loc[:2] == ("model", "training") and len(loc) > 2 and loc[2] == "optimizer":
        return "learning_rate" if loc[-1] == "learning_rate" else "optimizer"
    if loc[:2] == ("data_schema", "label"):
        return "n_classes" if loc[-1] == "n_classes" else "label"
    if loc[0] == "data_schema":
        return "features"
    for part in reversed(loc):
        if part in _LOCATIONS:
            return _LOCATIONS[part]
    return None
