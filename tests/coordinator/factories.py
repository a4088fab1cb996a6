"""Test data: a valid job spec and helpers to build requests."""

from __future__ import annotations

from typing import Any

from califusion.protocol.jobs import JobSpec


def spec_json(**overrides: Any) -> dict[str, Any]:
    """A small, valid job spec as JSON; ``overrides`` replace top-level fields."""
    spec: dict[str, Any] = {
        "title": "digits",
        "model": {
            "architecture": {"kind": "logistic_regression", "n_features": 2, "n_classes": 2},
            "training": {
                "loss": "cross_entropy",
                "optimizer": {"name": "sgd", "learning_rate": 0.1},
                "local_epochs": 1,
                "batch_size": 8,
            },
        },
        "data_schema": {
            "features": [{"name": "a"}, {"name": "b"}],
            "label": {"name": "y", "n_classes": 2},
        },
        "rounds": 2,
        "trainers_wanted": 3,
        "min_trainers_per_round": 2,
        "round_deadline_seconds": 60.0,
        "on_round_shortfall": "retry",
        "max_round_retries": 1,
        "aggregation_mode": "publisher",  # these tests drive sealed updates by hand
    }
    spec.update(overrides)
    return spec


def job_spec(**overrides: Any) -> JobSpec:
    return JobSpec.model_validate(spec_json(**overrides))
