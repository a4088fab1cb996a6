"""The blob store contract: content-addressed, immutable byte strings.

A blob's name is the SHA-256 hex digest of its bytes, so a store cannot hand back other bytes
than the ones asked for without the reader noticing. The coordinator stores only ciphertext
(sealed models and updates); a blob store never sees a key.
"""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

from califusion.core.errors import InvalidInput

_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class BlobStore(Protocol):
    """Where blobs live. Every backend passes ``tests/storage/test_blob_store.py``."""

    def put(self, data: bytes) -> str:
        """Store ``data``; return its digest. Storing the same bytes twice is a no-op."""
        ...

    def get(self, digest: str) -> bytes:
        """The blob's bytes, re-checked against ``digest``; :class:`NotFound` if absent."""
        ...

    def exists(self, digest: str) -> bool: ...

    def size(self, digest: str) -> int:
        """Size in bytes; :class:`NotFound` if absent."""
        ...


def digest_of(data: bytes) -> str:
    """The name a blob store gives ``data``."""
    return hashlib.sha256(data).hexdigest()


def check_digest(digest: str) -> str:
    """``digest`` if it is 64 lowercase hex characters; otherwise :class:`InvalidInput`.

    Every backend calls this before using a digest as a file or object name, so a digest can
    never smuggle a path (``../``) into a store.
    """
    if not _DIGEST.fullmatch(digest):
        raise InvalidInput("a blob digest is 64 lowercase hex characters (SHA-256)")
    return digest
