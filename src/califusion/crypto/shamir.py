"""Shamir t-of-n secret sharing of byte strings over GF(2^32 − 5), batched with NumPy.

Why hand-written: no well-kept Python library shares secrets vectorized. Flower's SecAgg+
uses PyCryptodome's Shamir, which evaluates and interpolates one GF(2^128) polynomial per
16-byte chunk in pure Python, and that is its bottleneck: every client shares two 32-byte
secrets with each of its neighbours and the server reconstructs hundreds of them per round.

Encoding. A secret is cut into 3-byte limbs; each limb (< 2^24) is one element of the prime
field p = 2^32 − 5 (the largest 32-bit prime) and gets its own random polynomial of degree
t − 1. Limbs are independent, so each is perfectly hidden by t − 1 shares, and therefore so is
the whole secret. Because p < 2^32, a product of two field elements is below 2^64 and a sum of
t reduced products stays below 2^64 for any t < 2^32: all arithmetic is plain ``uint64`` NumPy
with a ``%`` after each product, no object arrays and no overflow. All limbs of all secrets are
evaluated at all points in one Horner loop over the degree; reconstruction computes Lagrange
weights at 0 for many share sets at once (Fermat inverses, vectorized).

A share is ``(index, secret_len, values)``: the x-coordinate (1..65535), the length of the
secret it belongs to, and one little-endian uint32 field element per limb. Reconstruction
refuses decoded limbs outside 24 bits, which catches most inconsistent share sets (but it is no
integrity check: callers that need one commit to the secret, as SecAgg does).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from califusion.core.errors import InvalidInput

PRIME = 2**32 - 5
LIMB_BYTES = 3
MAX_SHARES = 2**16 - 1
_LIMB_LIMIT = 1 << (8 * LIMB_BYTES)
_P = np.uint64(PRIME)
_HEADER = struct.Struct(">HI")

RandomBytes = Callable[[int], bytes]
"""A source of uniformly random bytes, ``os.urandom`` unless a test needs determinism."""

_U64 = npt.NDArray[np.uint64]


@dataclass(frozen=True, slots=True)
class Share:
    """One point of the sharing polynomials of one secret."""

    index: int
    secret_len: int
    values: bytes

    def __post_init__(self) -> None:
        if not 1 <= self.index <= MAX_SHARES:
            raise InvalidInput(f"share index must be in 1..{MAX_SHARES}, got {self.index}")
        if self.secret_len < 1:
            raise InvalidInput("a share must belong to a non-empty secret")
        if len(self.values) != 4 * _limb_count(self.secret_len):
            raise InvalidInput(
                f"a share of a {self.secret_len}-byte secret has "
                f"{4 * _limb_count(self.secret_len)} value bytes, got {len(self.values)}"
            )

    def to_bytes(self) -> bytes:
        return _HEADER.pack(self.index, self.secret_len) + self.values

    @classmethod
    def from_bytes(cls, data: bytes) -> Share:
        if len(data) < _HEADER.size:
            raise InvalidInput("share encoding is truncated")
        index, secret_len = _HEADER.unpack_from(data)
        return cls(index=index, secret_len=secret_len, values=bytes(data[_HEADER.size :]))


def split(secret: bytes, t: int, n: int, rng: RandomBytes = os.urandom) -> list[Share]:
    """Shares of ``secret`` at x = 1..n; any ``t`` of them reconstruct it, fewer reveal nothing."""
    return split_many([secret], t, n, rng)[0]


def split_many(
    secrets: Sequence[bytes], t: int, n: int, rng: RandomBytes = os.urandom
) -> list[list[Share]]:
    """Share several equally long secrets at once: ``result[s][x - 1]`` is secret s at x."""
    if not secrets:
        return []
    secret_len = len(secrets[0])
    if secret_len == 0 or any(len(secret) != secret_len for secret in secrets):
        raise InvalidInput("split_many needs non-empty secrets of one length")
    if not 1 <= t <= n <= MAX_SHARES:
        raise InvalidInput(f"need 1 <= t <= n <= {MAX_SHARES}, got t={t}, n={n}")
    constants = np.stack([_to_limbs(secret) for secret in secrets])  # (S, L)
    coefficients = _random_elements(rng, (t - 1, *constants.shape))  # (t-1, S, L)
    xs = np.arange(1, n + 1, dtype=np.uint64).reshape(n, 1, 1)
    values = np.zeros((n, *constants.shape), dtype=np.uint64)
    # Horner from the highest coefficient: values < p < 2^32 and x < 2^16, so values*x + c
    # stays below 2^49 before the reduction.
    for coefficient in coefficients[::-1]:
        np.add(values, coefficient, out=values)
        np.multiply(values, xs, out=values)
        np.remainder(values, _P, out=values)
    np.add(values, constants, out=values)
    np.remainder(values, _P, out=values)
    words = values.astype("<u4")  # (n, S, L)
    return [
        [Share(index=x + 1, secret_len=secret_len, values=words[x, s].tobytes()) for x in range(n)]
        for s in range(len(secrets))
    ]


def combine(shares: Sequence[Share], t: int) -> bytes:
    """The secret behind ``shares``: needs at least ``t`` shares with distinct indices."""
    return combine_many([shares], t)[0]


def combine_many(share_sets: Sequence[Sequence[Share]], t: int) -> list[bytes]:
    """Reconstruct many secrets at once; each set must hold at least ``t`` valid shares.

    The first ``t`` shares of each set are used. Sets may belong to secrets of different
    lengths; sets of one length are reconstructed in one vectorized pass.
    """
    if t < 1:
        raise InvalidInput(f"threshold must be at least 1, got {t}")
    by_length: dict[int, list[int]] = {}
    for position, shares in enumerate(share_sets):
        _check_share_set(shares, t)
        by_length.setdefault(shares[0].secret_len, []).append(position)
    secrets: list[bytes] = [b""] * len(share_sets)
    for secret_len, positions in by_length.items():
        xs = np.array(
            [[share.index for share in share_sets[p][:t]] for p in positions], dtype=np.uint64
        )
        ys = np.frombuffer(
            b"".join(share.values for p in positions for share in share_sets[p][:t]),
            dtype="<u4",
        ).reshape(len(positions), t, -1)
        if (ys >= PRIME).any():
            raise InvalidInput("a share value is not a field element")
        weights = _lagrange_weights_at_zero(xs)  # (m, t)
        products = weights[:, :, None] * ys.astype(np.uint64)
        np.remainder(products, _P, out=products)
        limbs = products.sum(axis=1, dtype=np.uint64) % _P  # (m, L)
        for p, secret in zip(positions, _from_limbs(limbs, secret_len), strict=True):
            secrets[p] = secret
    return secrets


def _check_share_set(shares: Sequence[Share], t: int) -> None:
    if len(shares) < t:
        raise InvalidInput(f"{t} shares are needed to reconstruct, got {len(shares)}")
    indices = [share.index for share in shares]
    if len(set(indices)) != len(indices):
        raise InvalidInput("shares with duplicate indices cannot be combined")
    if len({share.secret_len for share in shares}) != 1:
        raise InvalidInput("shares of secrets of different lengths cannot be combined")


def _limb_count(secret_len: int) -> int:
    return -(-secret_len // LIMB_BYTES)


def _to_limbs(secret: bytes) -> _U64:
    padded = secret + bytes(-len(secret) % LIMB_BYTES)
    octets = np.frombuffer(padded, dtype=np.uint8).reshape(-1, LIMB_BYTES).astype(np.uint64)
    limbs: _U64 = octets[:, 0] | (octets[:, 1] << np.uint64(8)) | (octets[:, 2] << np.uint64(16))
    return limbs


def _from_limbs(limbs: _U64, secret_len: int) -> list[bytes]:
    if (limbs >= _LIMB_LIMIT).any():
        raise InvalidInput("shares are inconsistent: they do not encode a byte string")
    octets = np.stack(
        [
            limbs & np.uint64(0xFF),
            (limbs >> np.uint64(8)) & np.uint64(0xFF),
            limbs >> np.uint64(16),
        ],
        axis=-1,
    ).astype(np.uint8)  # (m, L, 3)
    flat = octets.reshape(len(limbs), -1)
    if flat[:, secret_len:].any():
        raise InvalidInput("shares are inconsistent: padding bytes are not zero")
    return [row[:secret_len].tobytes() for row in flat]


def _random_elements(rng: RandomBytes, shape: tuple[int, ...]) -> _U64:
    """Uniform field elements: 32-bit draws, rejecting the 5 values >= p."""
    count = int(np.prod(shape))
    draws = np.frombuffer(rng(4 * count), dtype="<u4").astype(np.uint64)
    rejected = draws >= _P
    while rejected.any():
        redraw = np.frombuffer(rng(4 * int(rejected.sum())), dtype="<u4").astype(np.uint64)
        draws[rejected] = redraw
        rejected = draws >= _P
    return draws.reshape(shape)


def _mul(a: _U64, b: _U64) -> _U64:
    product: _U64 = (a * b) % _P
    return product


def _inverse(values: _U64) -> _U64:
    """Elementwise modular inverse by Fermat: values^(p-2) mod p."""
    result = np.ones_like(values)
    base = values.copy()
    exponent = PRIME - 2
    while exponent:
        if exponent & 1:
            result = _mul(result, base)
        base = _mul(base, base)
        exponent >>= 1
    return result


def _lagrange_weights_at_zero(xs: _U64) -> _U64:
    """w[m, i] = prod_{j != i} x_j / (x_j - x_i) mod p for each row of distinct x's."""
    rows, t = xs.shape
    numerator = np.ones(rows, dtype=np.uint64)
    denominator = np.ones((rows, t), dtype=np.uint64)
    for j in range(t):
        numerator = _mul(numerator, xs[:, j])
        difference = (xs[:, j : j + 1] + _P - xs) % _P  # (rows, t): x_j - x_i
        difference[:, j] = 1
        denominator = _mul(denominator, difference)
    # prod_{j != i} x_j = numerator / x_i, so w_i = numerator / (x_i * denominator_i).
    return _mul(numerator[:, None], _inverse(_mul(xs, denominator)))
