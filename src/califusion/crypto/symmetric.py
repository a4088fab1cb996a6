"""Symmetric encryption under a job key: how models and blind-mode pads travel.

AES-256-GCM with a random 96-bit nonce and associated data = header ‖ context. Layout::

    magic "CFS" ‖ version 0x01       4 bytes
    context digest                  16 bytes   SHA-256(context)[:16]
    nonce                           12 bytes
    ciphertext ‖ GCM tag            len(plaintext) + 16 bytes

Random nonces keep a key safe for about 2**32 messages, far beyond one job's ciphertexts.
"""

from __future__ import annotations

import hmac
import os
import secrets

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from califusion.core.errors import ContextMismatch, DecryptionFailed, InvalidInput
from califusion.crypto.context import CONTEXT_DIGEST_BYTES, context_digest

SYMMETRIC_MAGIC = b"CFS\x01"
JOB_KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_DIGEST_AT = len(SYMMETRIC_MAGIC)
_NONCE_AT = _DIGEST_AT + CONTEXT_DIGEST_BYTES
HEADER_BYTES = _NONCE_AT + NONCE_BYTES


def new_job_key() -> bytes:
    """A fresh random 256-bit key."""
    return secrets.token_bytes(JOB_KEY_BYTES)


def _aead(key: bytes) -> AESGCM:
    if len(key) != JOB_KEY_BYTES:
        raise InvalidInput("a job key is 32 bytes")
    return AESGCM(key)


def _encrypt_with(key: bytes, plaintext: bytes, context: bytes, nonce: bytes) -> bytes:
    aead = _aead(key)
    header = SYMMETRIC_MAGIC + context_digest(context) + nonce
    return header + aead.encrypt(nonce, plaintext, header + context)


def encrypt(key: bytes, plaintext: bytes, context: bytes) -> bytes:
    """Encrypt under a 32-byte key, bound to ``context``."""
    return _encrypt_with(key, plaintext, context, os.urandom(NONCE_BYTES))


def decrypt(key: bytes, blob: bytes, context: bytes) -> bytes:
    """Decrypt ``encrypt`` output; ContextMismatch or DecryptionFailed when it does not fit."""
    aead = _aead(key)
    if len(blob) < HEADER_BYTES + TAG_BYTES or not blob.startswith(SYMMETRIC_MAGIC):
        raise DecryptionFailed("ciphertext is malformed")
    if not hmac.compare_digest(blob[_DIGEST_AT:_NONCE_AT], context_digest(context)):
        raise ContextMismatch("ciphertext belongs to another context")
    header = blob[:HEADER_BYTES]
    try:
        return aead.decrypt(blob[_NONCE_AT:HEADER_BYTES], blob[HEADER_BYTES:], header + context)
    except InvalidTag as exc:
        raise DecryptionFailed("ciphertext could not be authenticated") from exc
