"""Sealed envelopes: anonymous-sender public-key encryption to one X25519 key.

``seal`` makes a fresh ephemeral X25519 key, agrees a secret with the recipient's agreement key,
derives an AES-256-GCM key with HKDF-SHA256 (the info binds both public keys) and encrypts under
associated data = the whole header ‖ the context bytes. Layout::

    magic "CFE" ‖ version 0x01       4 bytes
    recipient key id                 8 bytes   SHA-256(recipient agreement public)[:8]
    context digest                  16 bytes   SHA-256(context)[:16]
    ephemeral public key            32 bytes
    nonce                           12 bytes
    ciphertext ‖ GCM tag            len(plaintext) + 16 bytes

Opening checks, in order: framing (else DecryptionFailed), key id (WrongRecipient), context
digest (ContextMismatch), then the tag (DecryptionFailed). The key id and digest only make the
error useful; the security rests on the AEAD, which authenticates all of them.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from califusion.core.errors import ContextMismatch, DecryptionFailed, InvalidInput, WrongRecipient
from califusion.crypto.context import CONTEXT_DIGEST_BYTES, context, context_digest
from califusion.crypto.identity import KEY_BYTES, Identity

__all__ = [
    "ENVELOPE_MAGIC",
    "HEADER_BYTES",
    "agreement_key_id",
    "context",
    "open_envelope",
    "seal",
    "unwrap_key",
    "wrap_key",
]

ENVELOPE_MAGIC = b"CFE\x01"
KEY_ID_BYTES = 8
NONCE_BYTES = 12
TAG_BYTES = 16
HEADER_BYTES = len(ENVELOPE_MAGIC) + KEY_ID_BYTES + CONTEXT_DIGEST_BYTES + KEY_BYTES + NONCE_BYTES
_HKDF_INFO = b"califusion/envelope/v1"

_KEY_ID_AT = len(ENVELOPE_MAGIC)
_DIGEST_AT = _KEY_ID_AT + KEY_ID_BYTES
_EPHEMERAL_AT = _DIGEST_AT + CONTEXT_DIGEST_BYTES
_NONCE_AT = _EPHEMERAL_AT + KEY_BYTES


def agreement_key_id(agreement_public: bytes) -> bytes:
    """The 8-byte id of an X25519 public key that envelopes carry."""
    return hashlib.sha256(agreement_public).digest()[:KEY_ID_BYTES]


def _raw_public(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def _envelope_key(shared: bytes, ephemeral_public: bytes, recipient_public: bytes) -> bytes:
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=_HKDF_INFO + ephemeral_public + recipient_public,
    ).derive(shared)


def _seal_with(
    plaintext: bytes,
    recipient_agreement_public: bytes,
    context: bytes,
    ephemeral: X25519PrivateKey,
    nonce: bytes,
) -> bytes:
    if len(recipient_agreement_public) != KEY_BYTES:
        raise InvalidInput("a recipient agreement key is 32 bytes")
    ephemeral_public = _raw_public(ephemeral)
    try:
        peer = X25519PublicKey.from_public_bytes(recipient_agreement_public)
        shared = ephemeral.exchange(peer)
    except ValueError as exc:  # a low-order point: the all-zero shared secret
        raise InvalidInput("recipient agreement key is not usable") from exc
    header = (
        ENVELOPE_MAGIC
        + agreement_key_id(recipient_agreement_public)
        + context_digest(context)
        + ephemeral_public
        + nonce
    )
    key = _envelope_key(shared, ephemeral_public, recipient_agreement_public)
    return header + AESGCM(key).encrypt(nonce, plaintext, header + context)


def seal(plaintext: bytes, recipient_agreement_public: bytes, context: bytes) -> bytes:
    """Encrypt ``plaintext`` so only the holder of the agreement key can open it, in ``context``."""
    return _seal_with(
        plaintext,
        recipient_agreement_public,
        context,
        X25519PrivateKey.generate(),
        os.urandom(NONCE_BYTES),
    )


def open_envelope(envelope: bytes, recipient: Identity, context: bytes) -> bytes:
    """Decrypt an envelope sealed to ``recipient`` in ``context``; raise a specific CryptoError."""
    if len(envelope) < HEADER_BYTES + TAG_BYTES or not envelope.startswith(ENVELOPE_MAGIC):
        raise DecryptionFailed("envelope is malformed")
    recipient_public = recipient.public().agreement_public
    key_id = envelope[_KEY_ID_AT:_DIGEST_AT]
    if not hmac.compare_digest(key_id, agreement_key_id(recipient_public)):
        raise WrongRecipient("envelope is sealed to another key")
    if not hmac.compare_digest(envelope[_DIGEST_AT:_EPHEMERAL_AT], context_digest(context)):
        raise ContextMismatch("envelope belongs to another context")
    header = envelope[:HEADER_BYTES]
    ephemeral_public = envelope[_EPHEMERAL_AT:_NONCE_AT]
    nonce = envelope[_NONCE_AT:HEADER_BYTES]
    try:
        peer = X25519PublicKey.from_public_bytes(ephemeral_public)
        shared = recipient.agreement_private.exchange(peer)
        key = _envelope_key(shared, ephemeral_public, recipient_public)
        return AESGCM(key).decrypt(nonce, envelope[HEADER_BYTES:], header + context)
    except (InvalidTag, ValueError) as exc:
        raise DecryptionFailed("envelope could not be authenticated") from exc


def wrap_key(key: bytes, recipient_agreement_public: bytes, context: bytes) -> bytes:
    """Seal a 32-byte symmetric key (e.g. a job key) to one recipient."""
    if len(key) != KEY_BYTES:
        raise InvalidInput("only 32-byte keys can be wrapped")
    return seal(key, recipient_agreement_public, context)


def unwrap_key(wrapped: bytes, recipient: Identity, context: bytes) -> bytes:
    """Open a wrapped key; raise DecryptionFailed unless it holds exactly 32 bytes."""
    key = open_envelope(wrapped, recipient, context)
    if len(key) != KEY_BYTES:
        raise DecryptionFailed("envelope does not hold a 32-byte key")
    return key
