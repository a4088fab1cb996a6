"""Known answers for what clients sign: these bytes are in every stored transcript, so an
encoding that changes (even one that is faster) would make old rounds fail to verify."""

from __future__ import annotations

import hashlib

import pytest

from califusion.fl.secagg import AdvertiseKeys, ConsistencySignature, survivor_view
from califusion.fl.secagg.messages import masked_input_payload


@pytest.mark.parametrize(
    ("survivors", "dropped", "expected"),
    [
        ((), (), "e69f868e4480e2333e64fa57285e60724e234fdfab31a6fa9f9fb49dd9a3ce1a"),
        ((0,), (), "6381de782dc52fe356416e8359deddb7d7cbca090487ee281ec028f10c74ca2c"),
        (
            range(100),
            (200, 2**63 - 1),
            "5f9d30d62339a506e4039fa0042c04b726ff29b779c5b6a8209efe040a826221",
        ),
        ((5, 3, 9), (1, 7), "d3d6a0a5c0e416ab7faa6dd397778102c02446ce02f7deabf744ad99be312f67"),
    ],
)
def test_survivor_view_known_answers(
    survivors: tuple[int], dropped: tuple[int], expected: str
) -> None:
    assert survivor_view(frozenset(survivors), frozenset(dropped)).hex() == expected


def test_payload_known_answers() -> None:
    round_id = bytes(range(16))
    advertised = AdvertiseKeys(round_id, 7, bytes(32), bytes(range(32)))
    assert hashlib.sha256(advertised.payload()).hexdigest() == (
        "98b9c3925aacc5c80f52b0dbe3bd06029f0f2e9302531811b43ffffd6d03256b"
    )
    domain, kind = b"califusion/secagg/v1\x00", b"consistency-check"
    signed = ConsistencySignature(round_id, 2**64 - 1, b"v" * 32)
    assert signed.payload() == (
        domain + kind + b"\x00\x00\x00\x10" + round_id + b"\x00\x00\x00\x08" + b"\xff" * 8
        + b"\x00\x00\x00\x20" + b"v" * 32
    )  # fmt: skip
    payload = masked_input_payload(round_id, 1, "<u4", 3, b"d" * 32)
    assert payload.endswith(
        b"\x00\x00\x00\x08" + (3).to_bytes(8, "big") + b"\x00\x00\x00\x20" + b"d" * 32
    )
