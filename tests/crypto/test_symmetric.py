"""Symmetric encryption under a job key: vector, tampering, context binding."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from califusion.core.errors import ContextMismatch, DecryptionFailed, InvalidInput
from califusion.crypto.context import context
from califusion.crypto.symmetric import (
    HEADER_BYTES,
    _encrypt_with,
    decrypt,
    encrypt,
    new_job_key,
)

KEY = bytes(range(32))
CONTEXT = context("test", job="job-" + "0" * 32, round=1)
NONCE = bytes(range(12))
FIXED_BLOB = bytes.fromhex(
    "434653017442730779455acf3318ef3e235bfbf8000102030405060708090a0b"
    "2676a27aa68ee27af961f3eac687172e11110516f68dd131ac5ed9f57776"
)
REGIONS = {
    "magic": (0, 4, DecryptionFailed),
    "context-digest": (4, 20, ContextMismatch),
    "nonce": (20, 32, DecryptionFailed),
    "ciphertext": (32, 46, DecryptionFailed),
    "tag": (46, 62, DecryptionFailed),
}


def test_fixed_vector() -> None:
    assert _encrypt_with(KEY, b"attack at dawn", CONTEXT, NONCE) == FIXED_BLOB
    assert decrypt(KEY, FIXED_BLOB, CONTEXT) == b"attack at dawn"
    header = FIXED_BLOB[:HEADER_BYTES]
    assert header == b"CFS\x01" + hashlib.sha256(CONTEXT).digest()[:16] + NONCE
    rebuilt = AESGCM(KEY).decrypt(NONCE, FIXED_BLOB[HEADER_BYTES:], header + CONTEXT)
    assert rebuilt == b"attack at dawn"


@pytest.mark.parametrize("region", sorted(REGIONS))
def test_flipped_bit_in_every_region(region: str) -> None:
    start, end, error = REGIONS[region]
    for index in range(start, end):
        tampered = bytearray(FIXED_BLOB)
        tampered[index] ^= 0x04
        with pytest.raises(error):
            decrypt(KEY, bytes(tampered), CONTEXT)


@pytest.mark.parametrize("length", [0, 4, HEADER_BYTES, HEADER_BYTES + 15, len(FIXED_BLOB) - 1])
def test_truncated(length: int) -> None:
    with pytest.raises(DecryptionFailed):
        decrypt(KEY, FIXED_BLOB[:length], CONTEXT)


def test_wrong_key() -> None:
    with pytest.raises(DecryptionFailed):
        decrypt(new_job_key(), FIXED_BLOB, CONTEXT)


def test_wrong_context() -> None:
    with pytest.raises(ContextMismatch):
        decrypt(KEY, FIXED_BLOB, context("test", job="job-" + "0" * 32, round=2))


@pytest.mark.parametrize("size", [0, 16, 24, 31, 33])
def test_key_must_be_32_bytes(size: int) -> None:
    with pytest.raises(InvalidInput):
        encrypt(bytes(size), b"x", CONTEXT)
    with pytest.raises(InvalidInput):
        decrypt(bytes(size), FIXED_BLOB, CONTEXT)


def test_new_job_key() -> None:
    keys = {new_job_key() for _ in range(16)}
    assert len(keys) == 16
    assert all(len(key) == 32 for key in keys)


def test_encrypt_is_randomized() -> None:
    assert encrypt(KEY, b"same", CONTEXT) != encrypt(KEY, b"same", CONTEXT)


@settings(max_examples=50, deadline=None)
@given(plaintext=st.binary(max_size=4096))
def test_round_trip(plaintext: bytes) -> None:
    key = new_job_key()
    assert decrypt(key, encrypt(key, plaintext, CONTEXT), CONTEXT) == plaintext
