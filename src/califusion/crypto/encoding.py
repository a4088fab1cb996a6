"""Unpadded base64url, the one text encoding for binary values on the wire and on disk.

Decoding is strict: padding, whitespace, characters outside the URL-safe alphabet and
non-canonical trailing bits are all rejected, so every byte string has exactly one text form.
"""

from __future__ import annotations

import base64
import binascii
import re

from califusion.core.errors import InvalidInput

_B64URL = re.compile(r"[A-Za-z0-9_-]*")


def b64e(data: bytes) -> str:
    """Encode bytes as unpadded base64url text."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: str) -> bytes:
    """Decode unpadded base64url text; raise InvalidInput unless it is the canonical form."""
    if not isinstance(text, str) or _B64URL.fullmatch(text) is None or len(text) % 4 == 1:
        raise InvalidInput("not unpadded base64url text")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("not unpadded base64url text") from exc
    if b64e(data) != text:
        # Unused trailing bits were set: a second spelling of the same bytes.
        raise InvalidInput("base64url text is not canonical")
    return data
