"""The mask PRG: known answers, agreement with the raw AES-CTR keystream, in-place sums."""

from __future__ import annotations

import os

import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from califusion.core.errors import InvalidInput
from califusion.crypto.prg import accumulate, derive_seed, expand

CHUNK = 256 * 1024


def keystream(seed: bytes, n_bytes: int) -> bytes:
    encryptor = Cipher(algorithms.AES(seed), modes.CTR(bytes(16))).encryptor()
    return encryptor.update(bytes(n_bytes))


def test_known_answer_zero_key() -> None:
    """AES-256 of the zero block under the zero key is dc95c078...87 (the well-known KAT);
    block 2 is AES-256 of counter 1. The stream's words are those bytes, little-endian."""
    words = expand(bytes(32), 8)
    assert words.dtype == np.uint32
    assert words.tobytes().hex() == (
        "dc95c078a2408989ad48a21492842087530f8afbc74536b9a963b4f1c4cb738b"
    )
    assert int(words[0]) == 0x78C095DC
    assert expand(bytes(32), 2, np.uint64).tobytes() == words[:4].tobytes()


@pytest.mark.parametrize(
    "n_words", [0, 1, 3, 1000, CHUNK // 4 - 1, CHUNK // 4, CHUNK // 4 + 5, 3 * CHUNK // 4 + 7]
)
@pytest.mark.parametrize("dtype", [np.uint32, np.uint64])
def test_expand_is_the_aes_ctr_keystream(n_words: int, dtype: type) -> None:
    seed = os.urandom(32)
    words = expand(seed, n_words, dtype)
    assert words.shape == (n_words,)
    assert words.tobytes() == keystream(seed, words.nbytes)


def test_expand_into_reused_buffer() -> None:
    seed = os.urandom(32)
    buffer = np.full(CHUNK, 7, dtype=np.uint32)
    assert expand(seed, CHUNK, out=buffer) is buffer
    assert buffer.tobytes() == keystream(seed, 4 * CHUNK)
    with pytest.raises(InvalidInput):
        expand(seed, CHUNK + 1, out=buffer)
    with pytest.raises(InvalidInput):
        expand(seed, CHUNK, np.uint64, out=buffer)
    with pytest.raises(InvalidInput):
        expand(seed, 10, np.int32)
    with pytest.raises(InvalidInput):
        expand(seed[:16], 10)


@settings(max_examples=30, deadline=None)
@given(
    n_words=st.integers(0, CHUNK // 2 + 3),
    signs=st.lists(st.booleans(), max_size=6),
    wide=st.booleans(),
)
def test_accumulate_equals_modular_sum_of_expansions(
    n_words: int, signs: list[bool], wide: bool
) -> None:
    dtype = np.uint64 if wide else np.uint32
    seeds = [os.urandom(32) for _ in signs]
    start = expand(os.urandom(32), n_words, dtype)
    expected = start.copy()
    for seed, plus in zip(seeds, signs, strict=True):
        stream = expand(seed, n_words, dtype)
        expected = expected + stream if plus else expected - stream
    result = start.copy()
    accumulate(
        result,
        add=[s for s, plus in zip(seeds, signs, strict=True) if plus],
        subtract=[s for s, plus in zip(seeds, signs, strict=True) if not plus],
    )
    assert np.array_equal(result, expected)


def test_accumulate_add_then_subtract_cancels() -> None:
    vector = np.arange(CHUNK + 11, dtype=np.uint32)
    seeds = [os.urandom(32) for _ in range(3)]
    accumulate(vector, add=seeds)
    assert not np.array_equal(vector, np.arange(CHUNK + 11, dtype=np.uint32))
    accumulate(vector, subtract=seeds)
    assert np.array_equal(vector, np.arange(CHUNK + 11, dtype=np.uint32))


def test_accumulate_rejects_unsuitable_targets() -> None:
    with pytest.raises(InvalidInput):
        accumulate(np.zeros(4, dtype=np.int64), add=[bytes(32)])
    with pytest.raises(InvalidInput):
        accumulate(np.zeros((2, 2), dtype=np.uint32), add=[bytes(32)])
    frozen = np.zeros(4, dtype=np.uint32)
    frozen.flags.writeable = False
    with pytest.raises(InvalidInput):
        accumulate(frozen, add=[bytes(32)])


def test_derive_seed_is_hkdf_and_domain_separated() -> None:
    key = os.urandom(32)
    expected = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"califusion/prg/v1/secagg/self-mask\x00ctx",
    ).derive(key)
    assert derive_seed(key, "secagg/self-mask", b"ctx") == expected
    seeds = {
        derive_seed(key, "secagg/self-mask", b"ctx"),
        derive_seed(key, "secagg/self-mask", b"ctx2"),
        derive_seed(key, "secagg/pairwise-mask", b"ctx"),
        derive_seed(os.urandom(32), "secagg/self-mask", b"ctx"),
    }
    assert len(seeds) == 4
    with pytest.raises(InvalidInput):
        derive_seed(key, "")


@settings(max_examples=25, deadline=None)
@given(
    n_words=st.integers(0, 3 * CHUNK // 4 + 9),
    workers=st.integers(1, 4),
    wide=st.booleans(),
)
def test_parallel_accumulate_equals_one_pass(n_words: int, workers: int, wide: bool) -> None:
    """Parts masked in threads, each stream started at its part's first word (CTR seek)."""
    dtype = np.uint64 if wide else np.uint32
    seeds = [os.urandom(32) for _ in range(4)]
    start = expand(os.urandom(32), n_words, dtype)
    one = accumulate(start.copy(), add=seeds[:2], subtract=seeds[2:])
    many = accumulate(start.copy(), add=seeds[:2], subtract=seeds[2:], workers=workers)
    assert np.array_equal(one, many)
    if n_words:
        assert not np.array_equal(many, start)


def test_accumulate_rejects_no_workers() -> None:
    with pytest.raises(InvalidInput, match="workers"):
        accumulate(np.zeros(4, dtype=np.uint32), add=[bytes(32)], workers=0)
