"""Weights: layout, initialisation, validation, safetensors and flat vectors."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest

from califusion.core.errors import WeightsError
from califusion.ml.spec import ModelSpec
from califusion.ml.weights import (
    Weights,
    add_scaled,
    expected_shapes,
    flatten,
    from_safetensors,
    global_norm,
    init_weights,
    parameter_count,
    subtract,
    to_safetensors,
    unflatten,
    validate_weights,
)

from .model_specs import linear, logistic, mlp


def test_expected_shapes_per_architecture() -> None:
    assert expected_shapes(linear(4, 2)) == {"weight": (4, 2), "bias": (2,)}
    assert expected_shapes(logistic(60, 10)) == {"weight": (60, 10), "bias": (10,)}
    assert list(expected_shapes(mlp(4, (6, 5), 3)).items()) == [
        ("layers.0.weight", (4, 6)),
        ("layers.0.bias", (6,)),
        ("layers.1.weight", (6, 5)),
        ("layers.1.bias", (5,)),
        ("layers.2.weight", (5, 3)),
        ("layers.2.bias", (3,)),
    ]
    assert parameter_count(logistic(60, 10)) == 610
    assert parameter_count(mlp(4, (6, 5), 3)) == 4 * 6 + 6 + 6 * 5 + 5 + 5 * 3 + 3


def test_init_is_deterministic_in_the_seed_and_glorot_bounded() -> None:
    a = init_weights(logistic(60, 10, init_seed=7))
    b = init_weights(logistic(60, 10, init_seed=7))
    c = init_weights(logistic(60, 10, init_seed=8))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["weight"], c["weight"])
    assert all(t.dtype == np.float32 for t in a.values())
    assert not a["bias"].any()
    limit = np.sqrt(6 / 70)
    assert np.abs(a["weight"]).max() <= limit
    assert np.abs(a["weight"]).max() > 0.8 * limit  # spread over the range, not tiny
    validate_weights(a, logistic(60, 10))


def test_mlp_init_uses_he_for_relu_hidden_layers_and_glorot_for_the_output() -> None:
    weights = init_weights(mlp(100, (200,), 10, activation="relu"))
    assert np.abs(weights["layers.0.weight"]).max() > np.sqrt(6 / 300)  # beyond Glorot's bound
    assert np.abs(weights["layers.0.weight"]).max() <= np.sqrt(6 / 100)
    assert np.abs(weights["layers.1.weight"]).max() <= np.sqrt(6 / 210)
    tanh = init_weights(mlp(100, (200,), 10, activation="tanh"))
    assert np.abs(tanh["layers.0.weight"]).max() <= np.sqrt(6 / 300)


def _good() -> tuple[Weights, ModelSpec]:
    spec = mlp(3, (4,), 2)
    return init_weights(spec), spec


def test_validate_reports_missing_and_extra_tensors() -> None:
    weights, spec = _good()
    del weights["layers.1.bias"]
    weights["surprise"] = np.zeros(2, np.float32)
    with pytest.raises(WeightsError, match=r"missing \['layers.1.bias'\].*\['surprise'\]"):
        validate_weights(weights, spec)


def test_validate_names_tensor_expected_and_got_shapes() -> None:
    weights, spec = _good()
    weights["layers.0.weight"] = np.zeros((4, 3), np.float32)
    with pytest.raises(WeightsError) as info:
        validate_weights(weights, spec)
    assert "layers.0.weight" in str(info.value)
    assert "(4, 3)" in str(info.value) and "(3, 4)" in str(info.value)
    assert info.value.detail == {"tensor": "layers.0.weight", "expected": [3, 4], "got": [4, 3]}


def test_validate_rejects_other_dtypes() -> None:
    weights, spec = _good()
    weights["layers.1.weight"] = weights["layers.1.weight"].astype(np.float64)
    with pytest.raises(WeightsError, match=r"'layers.1.weight' has dtype float64"):
        validate_weights(weights, spec)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_validate_rejects_non_finite_values_naming_the_tensor(bad: float) -> None:
    weights, spec = _good()
    weights["layers.0.bias"][2] = bad
    with pytest.raises(WeightsError, match=r"'layers.0.bias' contains NaN or infinite"):
        validate_weights(weights, spec)


def test_safetensors_round_trip_with_metadata_and_canonical_order() -> None:
    spec = mlp(3, (4, 4), 2, init_seed=3)
    weights = init_weights(spec)
    data = to_safetensors(weights, {"job": "job-1", "round": "7"})
    back, meta = from_safetensors(data, spec)
    assert meta == {"job": "job-1", "round": "7"}
    assert list(back) == list(weights)
    assert all(np.array_equal(back[k], weights[k]) and back[k].dtype == np.float32 for k in back)
    loose, no_meta = from_safetensors(to_safetensors(weights))
    assert set(loose) == set(weights) and no_meta == {}


def test_from_safetensors_validates_against_the_spec() -> None:
    data = to_safetensors(init_weights(logistic(5, 3)))
    with pytest.raises(WeightsError, match=r"'weight' has shape \(5, 3\), expected \(6, 3\)"):
        from_safetensors(data, logistic(6, 3))


def _header_only(header: dict[str, object]) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"garbage",
        b"\xff" * 64,
        to_safetensors({"w": np.ones(4, np.float32)})[:-3],
        _header_only({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}),
        b"\x05\x00\x00\x00\x00\x00\x00\x00{nope",
    ],
)
def test_garbage_bytes_are_a_weights_error(data: bytes) -> None:
    with pytest.raises(WeightsError, match="not valid safetensors"):
        from_safetensors(data)


def test_metadata_must_be_strings() -> None:
    with pytest.raises(WeightsError, match="str to str"):
        to_safetensors({"w": np.ones(1, np.float32)}, {"round": 7})  # type: ignore[dict-item]


def test_flatten_and_unflatten_are_inverse_in_canonical_order() -> None:
    spec = mlp(3, (4,), 2, init_seed=1)
    weights = init_weights(spec)
    vector = flatten(weights)
    assert vector.dtype == np.float32 and vector.shape == (parameter_count(spec),)
    assert np.array_equal(vector[:12], weights["layers.0.weight"].ravel())
    assert np.array_equal(vector[12:16], weights["layers.0.bias"])
    back = unflatten(vector, spec)
    assert list(back) == list(weights)
    assert all(np.array_equal(back[k], weights[k]) for k in back)
    back["layers.0.bias"][0] = 99.0  # a copy, not a view of the vector
    assert vector[12] != 99.0


def test_unflatten_rejects_a_vector_of_the_wrong_length() -> None:
    with pytest.raises(WeightsError, match="flat vector of 18 values"):
        unflatten(np.zeros(17, np.float32), logistic(5, 3))


def test_vector_helpers() -> None:
    a = {"w": np.array([3.0, 0.0], np.float32), "b": np.array([4.0], np.float32)}
    b = {"w": np.array([1.0, 1.0], np.float32), "b": np.array([1.0], np.float32)}
    assert global_norm(a) == pytest.approx(5.0)
    assert np.array_equal(subtract(a, b)["w"], [2.0, -1.0])
    assert np.array_equal(add_scaled(a, b, -2.0)["b"], [2.0])
    with pytest.raises(WeightsError, match="differ in layout"):
        subtract(a, {"w": a["w"]})
