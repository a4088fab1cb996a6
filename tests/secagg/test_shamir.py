"""Shamir sharing over GF(2^32 − 5): reconstruction, secrecy, validation, batching.

A pure-Python big-integer reference (Horner and Lagrange over p) checks the vectorized code.
"""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from califusion.core.errors import InvalidInput
from califusion.crypto import shamir
from califusion.crypto.shamir import PRIME, Share, combine, combine_many, split, split_many

P = PRIME


def seeded(seed: int) -> shamir.RandomBytes:
    generator = random.Random(seed)
    return generator.randbytes


def limbs_of(secret: bytes) -> list[int]:
    padded = secret + bytes(-len(secret) % 3)
    return [int.from_bytes(padded[i : i + 3], "little") for i in range(0, len(padded), 3)]


def values_of(share: Share) -> list[int]:
    return [int(v) for v in np.frombuffer(share.values, dtype="<u4")]


def interpolate(points: list[tuple[int, int]], at: int) -> int:
    """Reference Lagrange interpolation over GF(p) with Python integers."""
    total = 0
    for i, (xi, yi) in enumerate(points):
        weight = 1
        for j, (xj, _) in enumerate(points):
            if i != j:
                weight = weight * (at - xj) * pow(xi - xj, -1, P) % P
        total = (total + yi * weight) % P
    return total


def test_known_answer_against_reference_polynomial() -> None:
    """Shares equal sum_k c_k x^k mod p, with the coefficients drawn in the documented order."""
    secret = bytes(range(32))
    t, n = 3, 5
    shares = split(secret, t, n, seeded(7))
    # Re-draw the same coefficients: (t-1) x limbs little-endian uint32 (none rejected here).
    draws = np.frombuffer(seeded(7)(4 * (t - 1) * 11), dtype="<u4").reshape(t - 1, 11)
    assert (draws < P).all()
    for share in shares:
        x = share.index
        expected = [
            (limb + sum(int(draws[k, i]) * x ** (k + 1) for k in range(t - 1))) % P
            for i, limb in enumerate(limbs_of(secret))
        ]
        assert values_of(share) == expected


@settings(max_examples=60, deadline=None)
@given(
    secret=st.binary(min_size=1, max_size=64),
    n=st.integers(1, 40),
    data=st.data(),
)
def test_any_t_shares_reconstruct(secret: bytes, n: int, data: st.DataObject) -> None:
    t = data.draw(st.integers(1, n))
    shares = split(secret, t, n)
    chosen = data.draw(st.permutations(shares))[: data.draw(st.integers(t, n))]
    assert combine(chosen, t) == secret


@settings(max_examples=40, deadline=None)
@given(
    secret=st.binary(min_size=32, max_size=32),
    other=st.binary(min_size=32, max_size=32),
    n=st.integers(2, 20),
    data=st.data(),
)
def test_t_minus_1_shares_are_consistent_with_any_secret(
    secret: bytes, other: bytes, n: int, data: st.DataObject
) -> None:
    """Given t-1 shares, a polynomial through them and any other secret exists.

    We build it: interpolate each limb through (0, other) and the t-1 points, evaluate at an
    unused x, and the resulting forged share completes a set that combines to ``other``.
    """
    t = data.draw(st.integers(2, n))
    seen = data.draw(st.permutations(split(secret, t, n)))[: t - 1]
    fresh_x = data.draw(
        st.sampled_from([x for x in range(1, 200) if x not in {s.index for s in seen}])
    )
    forged_values = []
    for limb_index, target in enumerate(limbs_of(other)):
        points = [(0, target)] + [(s.index, values_of(s)[limb_index]) for s in seen]
        forged_values.append(interpolate(points, fresh_x))
    forged = Share(
        index=fresh_x,
        secret_len=32,
        values=np.array(forged_values, dtype="<u4").tobytes(),
    )
    assert combine([*seen, forged], t) == other


def test_fewer_than_t_shares_rejected() -> None:
    shares = split(os.urandom(32), 3, 5)
    with pytest.raises(InvalidInput, match="3 shares are needed"):
        combine(shares[:2], 3)


def test_duplicate_indices_rejected() -> None:
    shares = split(os.urandom(32), 2, 5)
    with pytest.raises(InvalidInput, match="duplicate"):
        combine([shares[0], shares[1], shares[0]], 2)


@pytest.mark.parametrize("index", [0, -1, 65536])
def test_invalid_index_rejected(index: int) -> None:
    share = split(os.urandom(32), 2, 3)[0]
    with pytest.raises(InvalidInput, match="index"):
        Share(index=index, secret_len=32, values=share.values)


def test_malformed_shares_rejected() -> None:
    share = split(os.urandom(32), 2, 3)[0]
    with pytest.raises(InvalidInput):
        Share(index=1, secret_len=32, values=share.values[:-4])
    with pytest.raises(InvalidInput, match="truncated"):
        Share.from_bytes(b"\x00")
    not_field = Share(index=2, secret_len=32, values=b"\xff" * len(share.values))
    with pytest.raises(InvalidInput, match="field element"):
        combine([share, not_field], 2)
    other_length = split(os.urandom(16), 2, 3)[1]
    with pytest.raises(InvalidInput, match="different lengths"):
        combine([share, other_length], 2)


@pytest.mark.parametrize(("t", "n"), [(0, 3), (4, 3), (2, 65536)])
def test_invalid_parameters_rejected(t: int, n: int) -> None:
    with pytest.raises(InvalidInput):
        split(b"secret", t, n)


def test_inconsistent_shares_detected_most_of_the_time() -> None:
    """Mixing shares of two secrets decodes to limbs beyond 24 bits with overwhelming odds."""
    a, b = split(os.urandom(32), 2, 3), split(os.urandom(32), 2, 3)
    with pytest.raises(InvalidInput, match="inconsistent"):
        combine([a[0], b[1]], 2)


def test_encoding_round_trip() -> None:
    share = split(os.urandom(32), 3, 4)[3]
    assert Share.from_bytes(share.to_bytes()) == share
    assert len(share.to_bytes()) == 6 + 4 * 11


def test_batched_split_and_combine_mixed_lengths() -> None:
    secrets = [os.urandom(32) for _ in range(5)]
    shared = split_many(secrets, 4, 9)
    short = split(b"abc", 4, 5)
    sets = [shares[2:6] for shares in shared] + [short[1:]]
    assert combine_many(sets, 4) == [*secrets, b"abc"]
    with pytest.raises(InvalidInput):
        split_many([b"ab", b"abc"], 2, 3)
    assert split_many([], 2, 3) == []


def test_rejection_sampling_of_coefficients() -> None:
    """Draws >= p are redrawn, so coefficients are uniform over the field."""
    stream = iter([b"\xff\xff\xff\xff" * 11, b"\x01\x00\x00\x00" * 11])

    def rng(size: int) -> bytes:
        return next(stream)[:size]

    secret = bytes(32)
    shares = split(secret, 2, 2, rng)
    assert values_of(shares[0]) == [1] * 11  # coefficient 1 after the redraw, secret 0
    assert combine(shares, 2) == secret


def test_large_threshold_and_many_points() -> None:
    secret = os.urandom(32)
    shares = split(secret, 250, 500)
    assert combine(shares[250:], 250) == secret
    assert combine(shares[::2], 250) == secret
