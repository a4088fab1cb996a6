"""Quantization: the overflow bound, the error bound, clipping and input validation."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from califusion.core.errors import InvalidInput, WeightsError
from califusion.fl.secagg import Quantizer, bits_for, clip_by_norm


@given(n=st.integers(1, 10**6), wide=st.booleans())
def test_bits_are_the_largest_that_cannot_overflow(n: int, wide: bool) -> None:
    w = 64 if wide else 32
    b = bits_for(n, w)
    assert n * (2**b - 1) <= 2**w - 1
    assert b == 52 or n * (2 ** (b + 1) - 1) > 2**w - 1


@pytest.mark.parametrize(("n", "bits"), [(1, 32), (2, 31), (3, 30), (200, 24), (10**4, 18)])
def test_bits_table(n: int, bits: int) -> None:
    assert bits_for(n) == bits


@pytest.mark.parametrize("wide", [False, True])
def test_extreme_inputs_sum_without_wrapping(wide: bool) -> None:
    n = 300
    quantizer = Quantizer.for_clients(n, 2.0, modulus_bits=64 if wide else 32)
    top = quantizer.quantize(np.full(5, 9.0, dtype=np.float32))  # clipped to +c
    assert (top == quantizer.levels).all()
    total = np.zeros(5, dtype=quantizer.dtype)
    for _ in range(n):
        total += top
    assert (total.astype(object) == n * quantizer.levels).all()  # no wrap-around
    assert np.allclose(quantizer.dequantize_sum(total, n), n * 2.0)
    bottom = quantizer.quantize(np.full(5, -9.0, dtype=np.float32))
    assert (bottom == 0).all()


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 500), seed=st.integers(0, 2**32 - 1), stochastic=st.booleans())
def test_sum_error_within_documented_bound(n: int, seed: int, stochastic: bool) -> None:
    rng = np.random.default_rng(seed)
    quantizer = Quantizer.for_clients(n, 1.0, stochastic=stochastic)
    updates = rng.uniform(-1.0, 1.0, size=(n, 64)).astype(np.float32)
    total = np.zeros(64, dtype=quantizer.dtype)
    for row in updates:
        total += quantizer.quantize(row, rng)
    error = np.abs(quantizer.dequantize_sum(total, n) - updates.astype(np.float64).sum(axis=0))
    # A little slack for float64 rounding in the reference sum itself.
    assert error.max() <= quantizer.error_bound(n) * (1 + 1e-9) + 1e-9


def test_stochastic_rounding_is_unbiased() -> None:
    quantizer = Quantizer(clip=1.0, bits=2, stochastic=True)  # step 2/3: coarse on purpose
    value = np.full(200_000, 0.1, dtype=np.float32)
    q = quantizer.quantize(value, np.random.default_rng(1))
    mean = q.astype(np.float64).mean() * quantizer.step - quantizer.clip
    assert abs(mean - 0.1) < 0.01
    deterministic = Quantizer(clip=1.0, bits=2).quantize(value)
    assert abs(deterministic.astype(np.float64).mean() * (2 / 3) - 1.0 - 0.1) > 0.2


def test_norm_clip_then_value_clip() -> None:
    update = np.array([3.0, 4.0], dtype=np.float32)
    assert np.allclose(clip_by_norm(update, 1.0), [0.6, 0.8])
    assert np.allclose(clip_by_norm(update, 10.0), [3.0, 4.0])
    quantizer = Quantizer.for_clients(1, 0.7, norm_clip=1.0)
    back = quantizer.dequantize_sum(quantizer.quantize(update), 1)
    assert np.allclose(back, [0.6, 0.7], atol=quantizer.step)


def test_invalid_inputs_rejected() -> None:
    quantizer = Quantizer.for_clients(4, 1.0)
    with pytest.raises(WeightsError):
        quantizer.quantize(np.array([0.0, np.nan], dtype=np.float32))
    with pytest.raises(WeightsError):
        quantizer.quantize(np.zeros((2, 2), dtype=np.float32))
    with pytest.raises(WeightsError):
        quantizer.quantize(np.zeros(3, dtype=np.int32))
    with pytest.raises(WeightsError):
        Quantizer.for_clients(4, 1.0, norm_clip=1.0).quantize(np.array([np.inf], dtype=np.float32))
    with pytest.raises(InvalidInput):
        Quantizer(clip=1.0, bits=2, stochastic=True).quantize(np.zeros(2, dtype=np.float32))
    with pytest.raises(InvalidInput, match="without overflow"):
        quantizer.dequantize_sum(np.zeros(2, dtype=np.uint32), quantizer.max_contributors + 1)
    for bad in (
        {"clip": 0.0, "bits": 8},
        {"clip": 1.0, "bits": 33},
        {"clip": 1.0, "bits": 53, "modulus_bits": 64},
    ):
        with pytest.raises(InvalidInput):
            Quantizer(**bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        bits_for(0)
    with pytest.raises(InvalidInput):
        bits_for(3, 16)


@pytest.mark.parametrize(("n", "wide"), [(1, False), (2, False), (50, False), (2, True), (9, True)])
def test_quantized_words_are_the_clipped_rounded_levels(n: int, wide: bool) -> None:
    """Every cast path (signed words when the levels fit them, unsigned when one client fills
    the modulus) gives floor(clip((x + c)/Δ, 0, L) + 1/2), computed here in exact rationals."""
    quantizer = Quantizer.for_clients(n, 0.5, modulus_bits=64 if wide else 32)
    rng = np.random.default_rng(n)
    values = np.concatenate([rng.normal(0, 0.3, 997), [-0.5, 0.5, -7.0, 7.0, 0.0]])
    words = quantizer.quantize(values.astype(np.float32))
    assert words.dtype == quantizer.dtype
    slope = Fraction(quantizer.slope(values))
    rounding = Fraction(4 * quantizer.levels, 2**53)  # float64 arithmetic near L
    for x, q in zip(values.astype(np.float32).tolist(), words.tolist(), strict=True):
        mapped = Fraction(x) * slope + Fraction(quantizer.levels, 2)
        level = min(max(mapped, Fraction(0)), Fraction(quantizer.levels))
        assert abs(q - level) <= Fraction(1, 2) + rounding, (x, q, float(level))
        assert 0 <= q <= quantizer.levels
