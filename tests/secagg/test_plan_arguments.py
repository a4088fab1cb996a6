"""A job spec's secure-aggregation fields reach the planner the coordinator and trainers share."""

from __future__ import annotations

from califusion.cli.demo import demo_spec
from califusion.fl.secagg import SecAggConfig
from califusion.protocol.secagg import SecureAggregationSpec, plan_arguments


def _config(max_corruption: float, n: int = 50) -> SecAggConfig:
    spec = demo_spec(trainers=n, rounds=1, epochs=1).model_copy(
        update={
            "secure_aggregation": SecureAggregationSpec(
                max_dropout=0.1, max_corruption=max_corruption
            )
        }
    )
    return SecAggConfig.plan(range(n), **plan_arguments(spec, n))


def test_a_corruption_bound_raises_threshold_degree_and_consistency_quorum() -> None:
    honest, guarded = _config(0.0), _config(0.1)
    assert guarded.max_corruption == 0.1 and honest.max_corruption == 0.0
    assert guarded.threshold > honest.threshold
    assert guarded.degree > honest.degree
    assert guarded.consistency_threshold > honest.consistency_threshold


def test_the_default_spec_plans_as_before() -> None:
    assert (_config(0.0).degree, _config(0.0).threshold) == (12, 7)
