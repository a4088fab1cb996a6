"""The create-job form and the page formatting helpers, without a server."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from califusion.ml.spec import Column, DataSchema, LabelSpec
from califusion.protocol import RoundInfo, RoundMetrics, RoundState
from califusion.web.jobform import DEFAULTS, LABELS, feature_names, parse_job_form
from califusion.web.present import amount, chart_data, parse_amount, schema_rows, short_principal

DIGEST = "a" * 64


def _valid(**changes: str) -> dict[str, str]:
    form = dict(DEFAULTS)
    form.update(title="Iris", features="x*4", n_classes="3", rounds="5", reward_pool="10.5")
    form.update(changes)
    return form


def test_a_valid_form_gives_the_spec_it_describes() -> None:
    form = parse_job_form(_valid(stake="0.25", price="", strategy="fedadam"), decimals=8)
    assert form.ok, (form.errors, form.general)
    spec = form.spec
    assert spec is not None
    assert [c.name for c in spec.data_schema.features] == ["x0", "x1", "x2", "x3"]
    assert spec.data_schema.label.n_classes == 3
    assert spec.model.architecture.kind == "logistic_regression"
    assert spec.reward_pool == 1_050_000_000
    assert spec.stake == 25_000_000
    assert spec.price is None
    assert spec.aggregation.name == "fedadam"


def test_an_mlp_regressor_needs_no_classes() -> None:
    form = parse_job_form(
        _valid(architecture="mlp_regressor", n_classes="", hidden="16, 8"), decimals=8
    )
    assert form.ok, form.errors
    assert form.spec is not None
    assert form.spec.model.task == "regression"
    assert form.spec.data_schema.label.n_classes is None


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"title": ""}, "title", "give the job a title"),
        ({"features": " , "}, "features", "PREFIX*N"),
        ({"n_classes": ""}, "n_classes", "number of classes"),
        ({"n_classes": "1"}, "n_classes", "greater than or equal to 2"),
        ({"rounds": "three"}, "rounds", "whole number"),
        ({"rounds": "0"}, "rounds", "greater than or equal to 1"),
        ({"learning_rate": "fast"}, "learning_rate", "number"),
        ({"learning_rate": "0"}, "learning_rate", "greater than 0"),
        ({"batch_size": "0"}, "batch_size", "greater than or equal to 1"),
        ({"min_trainers_per_round": "9"}, "min_trainers_per_round", "cannot exceed"),
        ({"stake": "-1"}, "stake", "zero or more"),
        ({"reward_pool": "0.000000001"}, "reward_pool", "8 decimal places"),
        ({"architecture": "mlp_classifier", "hidden": ""}, "hidden", "hidden layer"),
        ({"architecture": "resnet"}, "architecture", "listed"),
        ({"strategy": "magic"}, "strategy", "fedavg"),
        ({"label": "x1"}, "features", "unique"),
        ({"validation": "relative.csv"}, "validation", "full path"),
        ({"validation": "/no/such/file.csv"}, "validation", "no file"),
    ],
)
def test_each_mistake_is_reported_beside_its_field(
    changes: dict[str, str], field: str, message: str
) -> None:
    form = parse_job_form(_valid(**changes), decimals=8)
    assert not form.ok
    assert field in form.errors, form.errors
    assert message in form.errors[field]
    assert field in LABELS  # the error summary can name it


def test_messages_come_in_the_form_order() -> None:
    form = parse_job_form(_valid(title="", rounds="x", stake="y"), decimals=8)
    assert list(form.errors) == ["title", "rounds", "stake"]


def test_the_validation_file_is_kept_when_it_exists(tmp_path: Path) -> None:
    path = tmp_path / "val.csv"
    path.write_text("x0\n")
    form = parse_job_form(_valid(validation=str(path), open_now="1"), decimals=8)
    assert form.ok
    assert form.validation == path
    assert form.open_now


def test_feature_names() -> None:
    assert feature_names("x*3") == ["x0", "x1", "x2"]
    assert feature_names(" age, height ,") == ["age", "height"]
    assert feature_names("") == []


@pytest.mark.parametrize(
    ("units", "text"),
    [(0, "0 CFT"), (1_000_000_000, "10 CFT"), (50_000_000, "0.5 CFT"), (1, "0.00000001 CFT")],
)
def test_amounts_read_as_tokens(units: int, text: str) -> None:
    assert amount(units, 8, "CFT") == text
    assert parse_amount(text.removesuffix(" CFT"), 8) == units


def test_big_amounts_have_separators_and_parse_back() -> None:
    assert amount(123_456_700_000_000, 8, "CFT") == "1,234,567 CFT"
    assert parse_amount("1,234,567", 8) == 123_456_700_000_000
    with pytest.raises(ValueError, match="such as"):
        parse_amount("ten", 8)


def test_short_principal_keeps_both_ends() -> None:
    principal = "dmvxj-7ba6j-2xwqz-ucc2i-lk4ga-vof76-aae"
    assert short_principal(principal) == "dmvxj…vof76-aae"
    assert short_principal("aaaaa-aa") == "aaaaa-aa"


def test_schema_rows_fold_runs_of_alike_columns() -> None:
    features = [Column(name=f"x{i}") for i in range(5)]
    features += [Column(name="age", dtype="int32", min=0, max=120), Column(name="z")]
    schema = DataSchema(features=features, label=LabelSpec(name="y", n_classes=2))
    rows = schema_rows(schema)
    assert [(r.names, r.count) for r in rows] == [("x0 … x4", 5), ("age", 1), ("z", 1)]
    assert rows[1].allowed == "0 … 120"


def _round(number: int, state: RoundState, metrics: RoundMetrics | None) -> RoundInfo:
    return RoundInfo(
        number=number,
        attempt=0,
        state=state,
        model=DIGEST,
        opened_at=0.0,
        deadline=60.0,
        updates_received=2,
        metrics=metrics,
    )


def test_chart_data_takes_closed_rounds_in_order_with_gaps_for_unknowns() -> None:
    rounds = [
        _round(2, RoundState.CLOSED, RoundMetrics(loss=0.5, accuracy=0.8, train_loss=0.6)),
        _round(1, RoundState.CLOSED, RoundMetrics(train_loss=float(np.float64("nan")))),
        _round(3, RoundState.COLLECTING, None),
    ]
    data = chart_data(rounds)
    assert data["round"] == [1.0, 2.0]
    assert data["loss"] == [None, 0.5]
    assert data["accuracy"] == [None, 0.8]
    assert data["train_loss"][0] is None and data["train_loss"][1] == 0.6
    assert not any(isinstance(v, float) and math.isnan(v) for v in data["train_loss"])
