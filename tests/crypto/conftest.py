"""Fixtures shared by the crypto tests."""

from __future__ import annotations

import pytest

from califusion.crypto.identity import Identity

from .vectors import RFC7748_BOB_PRIVATE, RFC8032_SEED


@pytest.fixture
def rfc_identity() -> Identity:
    """Signing key of RFC 8032 test 1, agreement key of RFC 7748 Bob."""
    return Identity.from_private_bytes(RFC8032_SEED, RFC7748_BOB_PRIVATE)
