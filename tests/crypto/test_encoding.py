"""Unpadded base64url: known answers, strictness, round trip."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from califusion.core.errors import InvalidInput
from califusion.crypto.encoding import b64d, b64e


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"", ""),
        (b"f", "Zg"),
        (b"fo", "Zm8"),
        (b"foo", "Zm9v"),
        (b"\xfb\xff", "-_8"),
        (b"\xff", "_w"),
        (bytes(range(6)), "AAECAwQF"),
    ],
)
def test_known_answers(raw: bytes, text: str) -> None:
    assert b64e(raw) == text
    assert b64d(text) == raw


@pytest.mark.parametrize(
    "text",
    [
        "Zg==",  # padding
        "Zm9v+",  # standard alphabet
        "ab/c",
        "Zm 9v",  # whitespace
        "Zm9v\n",
        "A",  # impossible length
        "_x",  # non-zero unused bits: a second spelling of b"\xff"
        "Zh",
        "é",
    ],
)
def test_rejects_non_canonical_text(text: str) -> None:
    with pytest.raises(InvalidInput):
        b64d(text)


@given(st.binary(max_size=200))
def test_round_trip(raw: bytes) -> None:
    text = b64e(raw)
    assert "=" not in text
    assert b64d(text) == raw
