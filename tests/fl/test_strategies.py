"""Server strategies against hand calculations; state round trip; rejected rounds."""

from __future__ import annotations

import math

import numpy as np
import pytest

from califusion.core.errors import SpecError, WeightsError
from califusion.fl import strategies
from califusion.fl.strategies import FedAdam, FedAvg, FedProx, FedYogi, strategy_for
from califusion.ml.weights import Weights


def _w(weight: list[float], bias: float) -> Weights:
    return {
        "weight": np.array(weight, np.float32).reshape(2, 1),
        "bias": np.array([bias], np.float32),
    }


GLOBAL = _w([0.0, 0.0], 0.0)
ROUND = [(_w([1.0, 2.0], 3.0), 1), (_w([4.0, 5.0], 6.0), 2), (_w([-2.0, 0.5], 0.0), 5)]
# weighted mean by hand: (1·x1 + 2·x2 + 5·x3) / 8
MEAN = {"weight": [(1 + 8 - 10) / 8, (2 + 10 + 2.5) / 8], "bias": [(3 + 12 + 0) / 8]}


def test_fedavg_is_the_sample_weighted_mean() -> None:
    new = FedAvg().aggregate(GLOBAL, ROUND)
    assert list(new) == ["weight", "bias"]
    np.testing.assert_allclose(new["weight"].ravel(), MEAN["weight"], rtol=1e-6)
    np.testing.assert_allclose(new["bias"], MEAN["bias"], rtol=1e-6)
    assert new["weight"].dtype == np.float32 and new["weight"].shape == (2, 1)


def test_fedavg_ignores_client_order_and_fedprox_shares_its_rule() -> None:
    forward = FedAvg().aggregate(GLOBAL, ROUND)
    backward = FedProx().aggregate(GLOBAL, ROUND[::-1])
    for name in forward:
        np.testing.assert_allclose(forward[name], backward[name], rtol=1e-6)


def test_fedavg_with_a_server_learning_rate_moves_part_way() -> None:
    start = _w([1.0, 1.0], 1.0)
    new = FedAvg(server_learning_rate=0.5).aggregate(start, ROUND)
    np.testing.assert_allclose(
        new["weight"].ravel(), 1 + 0.5 * (np.array(MEAN["weight"]) - 1), rtol=1e-6
    )


def test_fedadam_first_step_by_hand() -> None:
    # one scalar parameter: global 0, mean 1  =>  Δ = 1
    strategy = FedAdam(server_learning_rate=0.1, beta1=0.9, beta2=0.99, tau=1e-3)
    start = {"w": np.zeros(1, np.float32)}
    new = strategy.aggregate(start, [({"w": np.ones(1, np.float32)}, 4)])
    m = 0.1 * 1.0  # (1 − β1)·Δ
    v = 0.99 * 1e-6 + 0.01 * 1.0  # β2·τ² + (1 − β2)·Δ²
    assert new["w"][0] == pytest.approx(0.1 * m / (math.sqrt(v) + 1e-3), rel=1e-6)
    state = strategy.state_dict()
    assert state["m"][0] == pytest.approx(m) and state["v"][0] == pytest.approx(v)


def test_fedyogi_steps_by_hand_including_the_sign_flip() -> None:
    strategy = FedYogi(server_learning_rate=1.0, beta1=0.5, beta2=0.9, tau=0.1)
    w0 = {"w": np.array([0.0], np.float32)}
    # round 1: Δ = 2, v₀ = τ² = 0.01 < Δ² = 4  =>  v = 0.01 + 0.1·4
    w1 = strategy.aggregate(w0, [({"w": np.array([2.0], np.float32)}, 1)])
    m1, v1 = 0.5 * 2.0, 0.01 + 0.1 * 4.0
    assert w1["w"][0] == pytest.approx(m1 / (math.sqrt(v1) + 0.1), rel=1e-6)
    # round 2: Δ = 0.1 around w1, Δ² = 0.01 < v  =>  v shrinks: v − 0.1·Δ²
    target = float(w1["w"][0]) + 0.1
    w2 = strategy.aggregate(w1, [({"w": np.array([target], np.float32)}, 3)])
    delta = target - float(w1["w"][0])  # 0.1 up to float32 rounding
    m2, v2 = 0.5 * m1 + 0.5 * delta, v1 - 0.1 * delta**2
    assert strategy.state_dict()["v"][0] == pytest.approx(v2, rel=1e-6)
    expected = float(w1["w"][0]) + m2 / (math.sqrt(v2) + 0.1)
    assert w2["w"][0] == pytest.approx(expected, rel=1e-6)
    # FedAdam would have grown v instead: the two rules really differ
    adam = FedAdam(server_learning_rate=1.0, beta1=0.5, beta2=0.9, tau=0.1)
    adam.aggregate(w0, [({"w": np.array([2.0], np.float32)}, 1)])
    assert adam.state_dict()["v"][0] == pytest.approx(0.9 * 0.01 + 0.1 * 4.0)


@pytest.mark.parametrize("name", ["fedadam", "fedyogi"])
def test_state_round_trip_gives_identical_next_rounds(name: str) -> None:
    rng = np.random.default_rng(0)

    def update() -> tuple[Weights, int]:
        return _w(list(rng.normal(size=2)), float(rng.normal())), int(rng.integers(1, 9))

    original = strategy_for(name, server_learning_rate=0.3, tau=0.01)
    weights = GLOBAL
    for _ in range(3):
        weights = original.aggregate(weights, [update(), update()])
    saved = {k: v.copy() for k, v in original.state_dict().items()}
    restored = strategy_for(name, server_learning_rate=0.3, tau=0.01)
    restored.load_state_dict(saved)
    final_round = [update(), update()]
    a = original.aggregate(weights, final_round)
    b = restored.aggregate(weights, final_round)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert restored.state_dict()["rounds"][0] == 4


def test_fresh_strategy_has_empty_state_and_load_checks_it() -> None:
    strategy = strategy_for("fedadam")
    assert strategy.state_dict() == {}
    with pytest.raises(WeightsError, match="keys m, v, rounds"):
        strategy.load_state_dict({"m": np.zeros(3)})
    with pytest.raises(WeightsError, match="v >= 0"):
        strategy.load_state_dict({"m": np.zeros(3), "v": -np.ones(3), "rounds": np.ones(1)})
    strategy.load_state_dict({"m": np.zeros(5), "v": np.ones(5), "rounds": np.ones(1)})
    with pytest.raises(WeightsError, match="holds 5 values but the model has 3"):
        strategy.aggregate(GLOBAL, ROUND)
    with pytest.raises(WeightsError, match="keeps no state"):
        FedAvg().load_state_dict({"m": np.zeros(3)})


def test_strategy_for_names_and_parameters() -> None:
    assert type(strategy_for("fedavg")) is FedAvg
    assert type(strategy_for("fedprox")) is FedProx
    yogi = strategy_for("fedyogi", server_learning_rate=0.01, beta1=0.8, beta2=0.95, tau=0.2)
    assert isinstance(yogi, FedYogi)
    assert (yogi.server_learning_rate, yogi.beta1, yogi.beta2, yogi.tau) == (0.01, 0.8, 0.95, 0.2)
    with pytest.raises(SpecError, match="unknown aggregation strategy 'fedsgd'"):
        strategy_for("fedsgd")
    with pytest.raises(SpecError, match="beta2"):
        strategy_for("fedadam", beta2=1.0)
    with pytest.raises(SpecError, match="server_learning_rate"):
        strategy_for("fedavg", server_learning_rate=0.0)


@pytest.mark.parametrize(
    ("updates", "message"),
    [
        ([], "without updates"),
        ([(_w([1.0, 2.0], 3.0), 0)], "positive integer"),
        ([(_w([1.0, 2.0], 3.0), True)], "positive integer"),
        ([(_w([1.0, 2.0], 3.0), 2.5)], "positive integer"),
        ([(_w([1.0, np.nan], 3.0), 1)], "NaN or infinite"),
        (
            [({"weight": np.zeros((1, 2), np.float32), "bias": np.zeros(1, np.float32)}, 1)],
            r"update 0: tensor 'weight' has shape \(1, 2\), expected \(2, 1\)",
        ),
        (
            [(_w([1.0, 2.0], 3.0), 1), ({"weight": np.zeros((2, 1), np.float32)}, 1)],
            r"update 1: tensors \['weight'\] differ",
        ),
        (
            [({"weight": np.zeros((2, 1), np.int32), "bias": np.zeros(1, np.float32)}, 1)],
            "not float",
        ),
    ],
)
def test_bad_rounds_are_weights_errors(updates: list[tuple[Weights, int]], message: str) -> None:
    for name in ("fedavg", "fedyogi"):
        with pytest.raises(WeightsError, match=message):
            strategy_for(name).aggregate(GLOBAL, updates)


def test_many_clients_are_reduced_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(strategies, "_BLOCK_VALUES", 7)  # 3 values each: blocks of 2 clients
    rng = np.random.default_rng(1)
    updates = [(_w(list(rng.normal(size=2)), float(rng.normal())), i + 1) for i in range(5)]
    new = FedAvg().aggregate(GLOBAL, updates)
    counts = np.arange(1, 6, dtype=np.float64)
    stacked = np.stack([np.concatenate([u["weight"].ravel(), u["bias"]]) for u, _ in updates])
    expected = counts @ stacked / counts.sum()
    np.testing.assert_allclose(
        np.concatenate([new["weight"].ravel(), new["bias"]]), expected, rtol=1e-6
    )
