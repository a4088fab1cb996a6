"""Canonical context bytes: what a ciphertext is for, bound into its associated data.

Every envelope and every symmetric ciphertext names its context (purpose, job, round, sender,
recipient...). Opening it under any other context fails, so a ciphertext cannot be replayed into
another job, round or conversation. The encoding is unambiguous: a fixed prefix, the purpose on
its own line, then ``key=value`` lines sorted by key; no field may contain a line break.
"""

from __future__ import annotations

import hashlib
import re

from califusion.core.errors import InvalidInput

CONTEXT_PREFIX = b"califusion/v1\n"
CONTEXT_DIGEST_BYTES = 16

_PURPOSE = re.compile(r"[a-z0-9][a-z0-9._/-]{0,63}")
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def context(purpose: str, **fields: str | int) -> bytes:
    """Canonical context bytes, e.g. ``context("update", job="job-..", round=3)``."""
    if _PURPOSE.fullmatch(purpose) is None:
        raise InvalidInput(f"context purpose must match {_PURPOSE.pattern}: {purpose!r}")
    lines = [purpose]
    for name in sorted(fields):
        value = fields[name]
        if _FIELD_NAME.fullmatch(name) is None:
            raise InvalidInput(f"context field name must match {_FIELD_NAME.pattern}: {name!r}")
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidInput(f"context field {name!r} must be text or an integer")
        text = str(value)
        if _CONTROL.search(text) is not None:
            raise InvalidInput(f"context field {name!r} contains a control character")
        lines.append(f"{name}={text}")
    return CONTEXT_PREFIX + "".join(f"{line}\n" for line in lines).encode("utf-8")


def context_digest(context_bytes: bytes) -> bytes:
    """The first 16 bytes of SHA-256 of the context, carried in ciphertext headers."""
    return hashlib.sha256(context_bytes).digest()[:CONTEXT_DIGEST_BYTES]
