"""Ed25519 verification and X25519 agreement on raw keys, through libsodium (PyNaCl).

Why a second binding. The secure-aggregation round verifies O(n·k + n·T) Ed25519 signatures
and makes O(n·k) X25519 agreements. ``cryptography``'s Ed25519 takes about twice libsodium's
time per verification, and its calls hold the GIL, so in a process that runs many clients (the
simulation, a server checking a stage's messages) they run on one core whatever the thread
count. libsodium's calls go through cffi, which releases the GIL, so they also spread over
threads. The two libraries are interoperable on raw keys: an Ed25519 public key or signature,
and an X25519 private or public key, are the same 32 or 64 bytes in both (RFC 8032, RFC 7748;
``tests/crypto/test_fastsig.py`` checks known answers and cross-checks both ways).

Only the secure-aggregation hot paths use this module; everything else stays on
``cryptography``'s recipes. libsodium's verification is the stricter of the two (it also
rejects small-order public keys and R values and non-canonical S), which refuses only what no
honest signer produces.
"""

from __future__ import annotations

import nacl.bindings
import nacl.exceptions

from califusion.core.errors import BadSignature, CryptoError

ED25519_PUBLIC_BYTES = 32
ED25519_SIGNATURE_BYTES = 64
X25519_KEY_BYTES = 32


class InvalidAgreement(CryptoError):
    """An X25519 agreement failed: a malformed key, or a peer key of small order."""

    code = "invalid-agreement"
    title = "Key agreement failed"


def verify_ed25519(public_raw: bytes, signature: bytes, message: bytes) -> None:
    """Raise :class:`BadSignature` unless ``signature`` is ``public_raw``'s Ed25519 signature
    of ``message`` (a malformed key or signature is a bad signature too)."""
    if len(public_raw) != ED25519_PUBLIC_BYTES or len(signature) != ED25519_SIGNATURE_BYTES:
        raise BadSignature("signature does not verify")
    try:  # libsodium's combined form: the detached one is not in PyNaCl's bindings
        nacl.bindings.crypto_sign_open(signature + message, public_raw)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.CryptoError, ValueError):
        raise BadSignature("signature does not verify") from None


def x25519(private_raw: bytes, public_raw: bytes) -> bytes:
    """The X25519 shared secret of a raw private key and a peer's raw public key.

    Raises :class:`InvalidAgreement` for keys that are not 32 bytes or a peer key whose
    result is all zeros (a small-order point), as ``cryptography`` refuses it too.
    """
    if len(private_raw) != X25519_KEY_BYTES or len(public_raw) != X25519_KEY_BYTES:
        raise InvalidAgreement("an X25519 key is 32 bytes")
    try:
        shared: bytes = nacl.bindings.crypto_scalarmult(private_raw, public_raw)
    except (nacl.exceptions.CryptoError, ValueError, TypeError):
        raise InvalidAgreement("the peer's X25519 key is not usable") from None
    if shared == bytes(X25519_KEY_BYTES):  # not secret: libsodium normally refuses it first
        raise InvalidAgreement("the peer's X25519 key is not usable")
    return shared


def x25519_public(private_raw: bytes) -> bytes:
    """The raw X25519 public key of a raw private key."""
    if len(private_raw) != X25519_KEY_BYTES:
        raise InvalidAgreement("an X25519 key is 32 bytes")
    public: bytes = nacl.bindings.crypto_scalarmult_base(private_raw)
    return public
