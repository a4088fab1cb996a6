"""The server's ingest kernel: one pass that adds a masked input (mod 2^w) and hashes it."""

from __future__ import annotations

import hashlib
from typing import cast

import blake3
import numpy as np
import pytest

from califusion.crypto.prg import MaskArray
from califusion.fl.secagg.server import add_and_hash


@pytest.mark.parametrize("dtype", [np.uint32, np.uint64])
@pytest.mark.parametrize("size", [1, 1000, (1 << 18) + 3, 3 * (1 << 18)])
@pytest.mark.parametrize("commitment", ["blake3", "sha256"])
def test_ingest_is_the_wrapped_sum_and_the_vectors_digest(
    dtype: type, size: int, commitment: str
) -> None:
    rng = np.random.default_rng(size)
    info = np.iinfo(dtype)
    start = cast(MaskArray, rng.integers(0, info.max, size, dtype=dtype, endpoint=True))
    vector = cast(MaskArray, rng.integers(0, info.max, size, dtype=dtype, endpoint=True))
    wrapped = (start.astype(object) + vector.astype(object)) % (int(info.max) + 1)

    total = start.copy()
    expected = (blake3.blake3 if commitment == "blake3" else hashlib.sha256)(vector.tobytes())
    assert add_and_hash(total, vector, commitment) == expected.digest()
    assert np.array_equal(total.astype(object), wrapped)
