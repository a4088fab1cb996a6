"""libsodium's Ed25519 and X25519 (``crypto/fastsig.py``): known answers and agreement with
``cryptography`` both ways."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from califusion.core.errors import BadSignature
from califusion.crypto.fastsig import InvalidAgreement, verify_ed25519, x25519, x25519_public

from .vectors import (
    RFC7748_ALICE_PRIVATE,
    RFC7748_ALICE_PUBLIC,
    RFC7748_BOB_PRIVATE,
    RFC7748_BOB_PUBLIC,
    RFC7748_SHARED,
    RFC8032_EMPTY_SIGNATURE,
    RFC8032_PUBLIC,
)


def test_rfc8032_test1_verifies() -> None:
    verify_ed25519(RFC8032_PUBLIC, RFC8032_EMPTY_SIGNATURE, b"")


@pytest.mark.parametrize("position", [0, 31, 32, 63])
def test_rfc8032_signature_with_a_flipped_bit_fails(position: int) -> None:
    forged = bytearray(RFC8032_EMPTY_SIGNATURE)
    forged[position] ^= 0x01
    with pytest.raises(BadSignature):
        verify_ed25519(RFC8032_PUBLIC, bytes(forged), b"")


def test_rfc8032_signature_over_another_message_fails() -> None:
    with pytest.raises(BadSignature):
        verify_ed25519(RFC8032_PUBLIC, RFC8032_EMPTY_SIGNATURE, b"\x00")


@pytest.mark.parametrize(
    ("public", "signature"),
    [
        (RFC8032_PUBLIC[:31], RFC8032_EMPTY_SIGNATURE),
        (RFC8032_PUBLIC + b"\x00", RFC8032_EMPTY_SIGNATURE),
        (RFC8032_PUBLIC, RFC8032_EMPTY_SIGNATURE[:63]),
        (RFC8032_PUBLIC, b""),
        (bytes(32), RFC8032_EMPTY_SIGNATURE),  # a small-order key
    ],
)
def test_malformed_keys_and_signatures_are_bad_signatures(public: bytes, signature: bytes) -> None:
    with pytest.raises(BadSignature):
        verify_ed25519(public, signature, b"")


def test_non_canonical_s_is_refused() -> None:
    # S + L (the group order) verifies in a lax implementation; RFC 8032 requires S < L.
    order = 2**252 + 27742317777372353535851937790883648493
    s = int.from_bytes(RFC8032_EMPTY_SIGNATURE[32:], "little") + order
    malleated = RFC8032_EMPTY_SIGNATURE[:32] + s.to_bytes(32, "little")
    with pytest.raises(BadSignature):
        verify_ed25519(RFC8032_PUBLIC, malleated, b"")


def test_signatures_of_cryptography_verify_here_and_ours_fail_where_theirs_do() -> None:
    for size in (0, 1, 64, 1000):
        key = Ed25519PrivateKey.generate()
        public = key.public_key().public_bytes_raw()
        message = os.urandom(size)
        signature = key.sign(message)
        verify_ed25519(public, signature, message)
        other = Ed25519PrivateKey.generate().public_key().public_bytes_raw()
        with pytest.raises(BadSignature):
            verify_ed25519(other, signature, message)
        with pytest.raises(BadSignature):
            verify_ed25519(public, signature, message + b"!")


def test_rfc7748_agreement_both_ways() -> None:
    assert x25519_public(RFC7748_ALICE_PRIVATE) == RFC7748_ALICE_PUBLIC
    assert x25519_public(RFC7748_BOB_PRIVATE) == RFC7748_BOB_PUBLIC
    assert x25519(RFC7748_ALICE_PRIVATE, RFC7748_BOB_PUBLIC) == RFC7748_SHARED
    assert x25519(RFC7748_BOB_PRIVATE, RFC7748_ALICE_PUBLIC) == RFC7748_SHARED


def test_agreement_matches_cryptography_on_random_raw_keys() -> None:
    for _ in range(20):
        mine, theirs = os.urandom(32), X25519PrivateKey.generate()
        their_public = theirs.public_key().public_bytes_raw()
        expected = theirs.exchange(X25519PublicKey.from_public_bytes(x25519_public(mine)))
        assert x25519(mine, their_public) == expected
        reference = X25519PrivateKey.from_private_bytes(mine).public_key().public_bytes_raw()
        assert x25519_public(mine) == reference


@pytest.mark.parametrize(
    ("private", "public"),
    [
        (RFC7748_ALICE_PRIVATE, bytes(32)),  # the zero point: all-zero shared secret
        (RFC7748_ALICE_PRIVATE, (1).to_bytes(32, "little")),  # u = 1, a small-order point
        (RFC7748_ALICE_PRIVATE, RFC7748_BOB_PUBLIC[:31]),
        (RFC7748_ALICE_PRIVATE[:31], RFC7748_BOB_PUBLIC),
    ],
)
def test_unusable_agreement_keys_are_refused(private: bytes, public: bytes) -> None:
    with pytest.raises(InvalidAgreement):
        x25519(private, public)


def test_public_key_of_a_short_private_key_is_refused() -> None:
    with pytest.raises(InvalidAgreement):
        x25519_public(b"\x01" * 31)
