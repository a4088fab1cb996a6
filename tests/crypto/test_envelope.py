"""Sealed envelopes and contexts: a fixed-key vector, every tampering, specific errors."""

from __future__ import annotations

import hashlib

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given, settings
from hypothesis import strategies as st

from califusion.core.errors import (
    ContextMismatch,
    CryptoError,
    DecryptionFailed,
    InvalidInput,
    WrongRecipient,
)
from califusion.crypto.context import context
from califusion.crypto.envelope import (
    HEADER_BYTES,
    _seal_with,
    open_envelope,
    seal,
    unwrap_key,
    wrap_key,
)
from califusion.crypto.identity import Identity

from .vectors import RFC7748_ALICE_PRIVATE, RFC7748_BOB_PUBLIC, RFC7748_SHARED

JOB = "job-" + "0" * 32
CONTEXT = context("test", job=JOB, round=1)
FIXED_NONCE = bytes(range(12))
# Sealed to RFC 7748 Bob with Alice as the ephemeral key: a regression vector for the format.
FIXED_ENVELOPE = bytes.fromhex(
    "43464501f35e5616160a30bf7442730779455acf3318ef3e235bfbf8"
    "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
    "000102030405060708090a0b"
    "ab9e5d71b302aee3783d5852ec3dc2c7720b7a1058beba8b169a5b7dfd3b"
)

# Byte ranges of each region of an envelope around a 14-byte plaintext.
REGIONS = {
    "magic": (0, 4, DecryptionFailed),
    "key-id": (4, 12, WrongRecipient),
    "context-digest": (12, 28, ContextMismatch),
    "ephemeral-key": (28, 60, DecryptionFailed),
    "nonce": (60, 72, DecryptionFailed),
    "ciphertext": (72, 86, DecryptionFailed),
    "tag": (86, 102, DecryptionFailed),
}


def test_context_is_canonical() -> None:
    expected = b"califusion/v1\ntest\njob=" + JOB.encode() + b"\nround=1\n"
    assert context("test", job=JOB, round=1) == expected
    assert context("update", round=3, job="j") == context("update", job="j", round="3")
    assert context("x") == b"califusion/v1\nx\n"


@pytest.mark.parametrize(
    ("purpose", "fields"),
    [
        ("", {}),
        ("Update", {}),
        ("up date", {}),
        ("update", {"job": "a\nb"}),
        ("update", {"job": "a\rb"}),
        ("update", {"Job": "a"}),
        ("update", {"flag": True}),
        ("update", {"ratio": 0.5}),
    ],
)
def test_context_rejects_ambiguous_input(purpose: str, fields: dict[str, object]) -> None:
    with pytest.raises(InvalidInput):
        context(purpose, **fields)  # type: ignore[arg-type]


def test_fixed_key_envelope_vector(rfc_identity: Identity) -> None:
    ephemeral = X25519PrivateKey.from_private_bytes(RFC7748_ALICE_PRIVATE)
    envelope = _seal_with(b"attack at dawn", RFC7748_BOB_PUBLIC, CONTEXT, ephemeral, FIXED_NONCE)
    assert envelope == FIXED_ENVELOPE
    assert open_envelope(FIXED_ENVELOPE, rfc_identity, CONTEXT) == b"attack at dawn"


def test_fixed_envelope_rebuilt_from_primitives() -> None:
    """The layout and key schedule, recomputed from the RFC 7748 shared secret by hand."""
    header = FIXED_ENVELOPE[:HEADER_BYTES]
    ephemeral_public = header[28:60]
    assert header[:4] == b"CFE\x01"
    assert header[4:12] == hashlib.sha256(RFC7748_BOB_PUBLIC).digest()[:8]
    assert header[12:28] == hashlib.sha256(CONTEXT).digest()[:16]
    assert header[60:72] == FIXED_NONCE
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"califusion/envelope/v1" + ephemeral_public + RFC7748_BOB_PUBLIC,
    ).derive(RFC7748_SHARED)
    plaintext = AESGCM(key).decrypt(FIXED_NONCE, FIXED_ENVELOPE[HEADER_BYTES:], header + CONTEXT)
    assert plaintext == b"attack at dawn"


@pytest.mark.parametrize("region", sorted(REGIONS))
def test_flipped_bit_in_every_region(rfc_identity: Identity, region: str) -> None:
    start, end, error = REGIONS[region]
    assert end <= len(FIXED_ENVELOPE)
    for index in range(start, end):
        for bit in (0x01, 0x80):
            tampered = bytearray(FIXED_ENVELOPE)
            tampered[index] ^= bit
            with pytest.raises(error):
                open_envelope(bytes(tampered), rfc_identity, CONTEXT)


def test_ignored_x25519_bit_is_still_bound(rfc_identity: Identity) -> None:
    # X25519 ignores the top bit of a public key; the header binding must catch it anyway.
    tampered = bytearray(FIXED_ENVELOPE)
    tampered[59] ^= 0x80
    with pytest.raises(DecryptionFailed):
        open_envelope(bytes(tampered), rfc_identity, CONTEXT)


def test_low_order_ephemeral_key_is_rejected(rfc_identity: Identity) -> None:
    tampered = FIXED_ENVELOPE[:28] + bytes(32) + FIXED_ENVELOPE[60:]
    with pytest.raises(DecryptionFailed):
        open_envelope(tampered, rfc_identity, CONTEXT)


@pytest.mark.parametrize("length", [0, 3, 4, 27, HEADER_BYTES, HEADER_BYTES + 15, 101])
def test_truncated_envelope(rfc_identity: Identity, length: int) -> None:
    with pytest.raises(DecryptionFailed):
        open_envelope(FIXED_ENVELOPE[:length], rfc_identity, CONTEXT)


def test_extended_envelope(rfc_identity: Identity) -> None:
    with pytest.raises(DecryptionFailed):
        open_envelope(FIXED_ENVELOPE + b"\x00", rfc_identity, CONTEXT)


def test_wrong_context() -> None:
    recipient = Identity.generate()
    envelope = seal(b"update", recipient.public().agreement_public, CONTEXT)
    for other in (context("test", job=JOB, round=2), context("other", job=JOB, round=1)):
        with pytest.raises(ContextMismatch):
            open_envelope(envelope, recipient, other)


def test_wrong_recipient() -> None:
    recipient, other = Identity.generate(), Identity.generate()
    envelope = seal(b"update", recipient.public().agreement_public, CONTEXT)
    with pytest.raises(WrongRecipient):
        open_envelope(envelope, other, CONTEXT)


def test_seal_is_randomized() -> None:
    recipient = Identity.generate().public().agreement_public
    assert seal(b"same", recipient, CONTEXT) != seal(b"same", recipient, CONTEXT)


@pytest.mark.parametrize("recipient_public", [bytes(31), bytes(32)])
def test_seal_rejects_unusable_recipient_keys(recipient_public: bytes) -> None:
    with pytest.raises(InvalidInput):
        seal(b"x", recipient_public, CONTEXT)


@settings(max_examples=50, deadline=None)
@given(plaintext=st.binary(max_size=2048), round_=st.integers(min_value=0, max_value=10**6))
def test_seal_open_round_trip(plaintext: bytes, round_: int) -> None:
    recipient = Identity.generate()
    ctx = context("update", job=JOB, round=round_)
    envelope = seal(plaintext, recipient.public().agreement_public, ctx)
    assert len(envelope) == HEADER_BYTES + len(plaintext) + 16
    assert open_envelope(envelope, recipient, ctx) == plaintext


def test_wrap_and_unwrap_key() -> None:
    recipient = Identity.generate()
    key = bytes(range(32))
    ctx = context("job-key", job=JOB, recipient=recipient.principal.to_text())
    wrapped = wrap_key(key, recipient.public().agreement_public, ctx)
    assert unwrap_key(wrapped, recipient, ctx) == key
    with pytest.raises(WrongRecipient):
        unwrap_key(wrapped, Identity.generate(), ctx)


@pytest.mark.parametrize("size", [0, 16, 31, 33])
def test_wrap_key_only_takes_32_bytes(size: int) -> None:
    with pytest.raises(InvalidInput):
        wrap_key(bytes(size), Identity.generate().public().agreement_public, CONTEXT)


def test_unwrap_key_checks_length() -> None:
    recipient = Identity.generate()
    envelope = seal(bytes(31), recipient.public().agreement_public, CONTEXT)
    with pytest.raises(DecryptionFailed):
        unwrap_key(envelope, recipient, CONTEXT)


def test_errors_say_little(rfc_identity: Identity) -> None:
    tampered = FIXED_ENVELOPE[:-1] + bytes([FIXED_ENVELOPE[-1] ^ 1])
    with pytest.raises(CryptoError) as caught:
        open_envelope(tampered, rfc_identity, CONTEXT)
    assert "attack" not in str(caught.value)
    assert FIXED_ENVELOPE.hex()[:16] not in str(caught.value)
