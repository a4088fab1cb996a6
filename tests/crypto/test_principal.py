"""Principal and ICRC-1 account text: every vector of /work/shared/ICRC.md, rejected forms too."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from califusion.core.errors import InvalidInput
from califusion.crypto.principal import ED25519_DER_PREFIX, Account, Principal

OWNER = "k2t6j-2nvnp-4zjm3-25dtz-6xhaa-c7boj-5gayf-oj3xs-i43lp-teztq-6ae"
ACCOUNT_ONE = f"{OWNER}-6cc627i.1"
ACCOUNT_1_TO_32 = f"{OWNER}-dfxgiyy.102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"


@pytest.mark.parametrize(
    ("raw", "text"),
    [(b"", "aaaaa-aa"), (b"\x04", "2vxsx-fae"), (b"\xab\xcd\x01", "em77e-bvlzu-aq")],
)
def test_principal_vectors(raw: bytes, text: str) -> None:
    assert Principal(raw).to_text() == text
    assert Principal.from_text(text) == Principal(raw)


def test_anonymous() -> None:
    assert Principal.anonymous().to_text() == "2vxsx-fae"


@pytest.mark.parametrize(
    ("public_hex", "text"),
    [
        # RFC 8032 test 1 public key; the same vector is in the IC's own derive_node_id test.
        (
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
            "e73il-iz5tp-nkgt7-idxyw-ngkah-47bpv-qdase-pzde6-g6vwc-a3eql-jae",
        ),
        ("00" * 32, "ukev2-6iweo-izmyj-rdxlb-jun6n-nef5z-gk2lp-fuzke-7ghpu-jecqq-iae"),
    ],
)
def test_self_authenticating_vectors(public_hex: str, text: str) -> None:
    assert Principal.self_authenticating(bytes.fromhex(public_hex)).to_text() == text


def test_der_prefix_is_the_subject_public_key_info_prefix() -> None:
    public = Ed25519PrivateKey.generate().public_key()
    der = public.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert der == ED25519_DER_PREFIX + raw


@pytest.mark.parametrize(
    "text",
    [
        "aaaaa-ab",  # checksum letter changed
        "2vxsx-fa",  # truncated
        "2VXSX-FAE",  # upper case
        "2vxsxfae",  # dashes missing
        "2vxsx-fae-",
        "k2t6j-2nvnp-4zjm3-25dtz-6xhaa-c7boj-5gayf-oj3xs-i43lp-teztq-6af",
        "",
    ],
)
def test_principal_rejected_forms(text: str) -> None:
    with pytest.raises(InvalidInput):
        Principal.from_text(text)


def test_principal_too_long() -> None:
    with pytest.raises(InvalidInput):
        Principal(bytes(30))


@pytest.mark.parametrize(
    ("subaccount", "text"),
    [
        (None, OWNER),
        (bytes(32), OWNER),
        (bytes(31) + b"\x01", ACCOUNT_ONE),
        (bytes(range(1, 33)), ACCOUNT_1_TO_32),
    ],
)
def test_account_vectors(subaccount: bytes | None, text: str) -> None:
    account = Account(Principal.from_text(OWNER), subaccount)
    assert account.to_text() == text
    assert Account.from_text(text) == account


def test_zero_subaccount_is_the_default_account() -> None:
    owner = Principal.from_text(OWNER)
    assert Account(owner, bytes(32)) == Account(owner)
    assert Account(owner).effective_subaccount == bytes(32)


@pytest.mark.parametrize(
    "text",
    [
        f"{OWNER}-6cc627i.01",  # leading zero kept
        f"{OWNER}-6cc627j.1",  # one checksum letter changed
        f"{OWNER}-6cc627i.2",  # checksum of another subaccount
        f"{OWNER}-dfxgiyy.102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f21",
        f"{OWNER}.1",  # no checksum
        f"{OWNER}-aaaaaaa.0",  # explicit zero subaccount
        f"{OWNER}-6cc627i.",  # empty subaccount
        f"{OWNER}-6cc627i.xyz",  # not hex
        f"{OWNER}-6cc627i.1" + "0" * 64,  # too long
    ],
)
def test_account_rejected_forms(text: str) -> None:
    with pytest.raises(InvalidInput):
        Account.from_text(text)


@pytest.mark.parametrize("size", [0, 31, 33])
def test_subaccount_must_be_32_bytes(size: int) -> None:
    with pytest.raises(InvalidInput):
        Account(Principal.anonymous(), bytes(size))


@given(
    owner=st.binary(max_size=29),
    subaccount=st.none() | st.binary(min_size=32, max_size=32),
)
def test_account_text_round_trip(owner: bytes, subaccount: bytes | None) -> None:
    account = Account(Principal(owner), subaccount)
    text = account.to_text()
    assert Account.from_text(text) == account
    assert Principal.from_text(Principal(owner).to_text()) == Principal(owner)
