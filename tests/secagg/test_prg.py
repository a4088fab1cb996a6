"""The mask PRG: known answers, agreement with the raw AES keystreams, in-place sums."""

from __future__ import annotations

import os

import numpy as np
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from califusion.core.errors import InvalidInput
from califusion.crypto.prg import (
    GCM_KEYSTREAM,
    LEGACY_CTR,
    PRGS,
    MaskStreams,
    accumulate,
    derive_seed,
    expand,
)

CHUNK = 256 * 1024


def keystream(seed: bytes, n_bytes: int, prg: str) -> bytes:
    """The stream as the PRG defines it, computed another way: counter mode over 0^96 ‖ 2
    (the counter blocks of GCM under a zero IV), or over the zero block for the first PRG."""
    counter = bytes(12) + (2).to_bytes(4, "big") if prg == GCM_KEYSTREAM else bytes(16)
    return Cipher(algorithms.AES(seed), modes.CTR(counter)).encryptor().update(bytes(n_bytes))


def test_known_answers() -> None:
    """With the zero key, the GCM keystream's first block is the ciphertext of McGrew and
    Viega's GCM test case 14 (AES-256, zero IV, one zero block): cea7403d…; the first PRG's
    is AES-256 of the zero block under the zero key (dc95c078…, the well-known KAT)."""
    words = expand(bytes(32), 4)
    assert words.tobytes().hex() == "cea7403d4d606b6e074ec5d3baf39d18"
    assert int(words[0]) == 0x3D40A7CE  # little-endian words
    legacy = expand(bytes(32), 8, prg=LEGACY_CTR)
    assert legacy.tobytes().hex() == (
        "dc95c078a2408989ad48a21492842087530f8afbc74536b9a963b4f1c4cb738b"
    )
    assert expand(bytes(32), 2, np.uint64).tobytes() == words[:4].tobytes()


def test_gcm_keystream_is_what_aes_gcm_encrypts_with() -> None:
    seed = os.urandom(32)
    zeros = bytes(3 * CHUNK + 20)
    assert (
        expand(seed, len(zeros) // 4).tobytes()
        == AESGCM(seed).encrypt(bytes(12), zeros, None)[: len(zeros)]
    )


@pytest.mark.parametrize(
    "n_words", [0, 1, 3, 1000, CHUNK // 4 - 1, CHUNK // 4, CHUNK // 4 + 5, 3 * CHUNK // 4 + 7]
)
@pytest.mark.parametrize("dtype", [np.uint32, np.uint64])
@pytest.mark.parametrize("prg", PRGS)
def test_expand_is_the_keystream(n_words: int, dtype: type, prg: str) -> None:
    seed = os.urandom(32)
    words = expand(seed, n_words, dtype, prg=prg)
    assert words.shape == (n_words,)
    assert words.tobytes() == keystream(seed, words.nbytes, prg)


def test_expand_into_reused_buffer() -> None:
    seed = os.urandom(32)
    buffer = np.full(CHUNK, 7, dtype=np.uint32)
    assert expand(seed, CHUNK, out=buffer) is buffer
    assert buffer.tobytes() == keystream(seed, 4 * CHUNK, GCM_KEYSTREAM)
    with pytest.raises(InvalidInput):
        expand(seed, CHUNK + 1, out=buffer)
    with pytest.raises(InvalidInput):
        expand(seed, CHUNK, np.uint64, out=buffer)
    with pytest.raises(InvalidInput):
        expand(seed, 10, np.int32)
    with pytest.raises(InvalidInput):
        expand(seed[:16], 10)
    with pytest.raises(InvalidInput, match="mask streams are"):
        expand(seed, 10, prg="aes128-ecb")


def test_a_gcm_stream_ends_where_its_counter_would_wrap() -> None:
    with pytest.raises(InvalidInput, match="at most"):
        expand(bytes(32), 2**34, np.uint32)
    streams = MaskStreams([bytes(32)])
    block = np.zeros(CHUNK // 4, np.uint32)
    streams.apply(block)
    streams._position = (2**32 - 2) * 16 - block.nbytes + 4  # as if near the end
    with pytest.raises(InvalidInput, match="at most"):
        streams.apply(block)


@settings(max_examples=30, deadline=None)
@given(
    n_words=st.integers(0, CHUNK // 2 + 3),
    signs=st.lists(st.booleans(), max_size=6),
    wide=st.booleans(),
    prg=st.sampled_from(PRGS),
)
def test_accumulate_equals_modular_sum_of_expansions(
    n_words: int, signs: list[bool], wide: bool, prg: str
) -> None:
    dtype = np.uint64 if wide else np.uint32
    seeds = [os.urandom(32) for _ in signs]
    start = expand(os.urandom(32), n_words, dtype)
    expected = start.copy()
    for seed, plus in zip(seeds, signs, strict=True):
        stream = expand(seed, n_words, dtype, prg=prg)
        expected = expected + stream if plus else expected - stream
    result = start.copy()
    accumulate(
        result,
        add=[s for s, plus in zip(seeds, signs, strict=True) if plus],
        subtract=[s for s, plus in zip(seeds, signs, strict=True) if not plus],
        prg=prg,
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
    streams=st.integers(0, 7),
    wide=st.booleans(),
    prg=st.sampled_from(PRGS),
)
def test_parallel_accumulate_equals_one_pass(
    n_words: int, workers: int, streams: int, wide: bool, prg: str
) -> None:
    """Streams dealt out to threads, each adding its block sums under the block's lock."""
    dtype = np.uint64 if wide else np.uint32
    seeds = [os.urandom(32) for _ in range(streams)]
    start = expand(os.urandom(32), n_words, dtype)
    half = streams // 2
    one = accumulate(start.copy(), add=seeds[:half], subtract=seeds[half:], prg=prg)
    many = accumulate(
        start.copy(), add=seeds[:half], subtract=seeds[half:], workers=workers, prg=prg
    )
    assert np.array_equal(one, many)
    if n_words and streams:
        assert not np.array_equal(many, start)


def test_accumulate_rejects_no_workers() -> None:
    with pytest.raises(InvalidInput, match="workers"):
        accumulate(np.zeros(4, dtype=np.uint32), add=[bytes(32)], workers=0)
