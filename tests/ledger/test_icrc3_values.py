"""ICRC-3 Value hashing, LEB128, canonical JSON, and the ICRC.md vectors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from califusion.core.errors import InvalidInput
from califusion.crypto.principal import Account, Principal
from califusion.ledger import (
    Array,
    Blob,
    Block,
    Int,
    Map,
    Nat,
    Op,
    Text,
    Value,
    decode_value,
    encode_value,
    hash_value,
)
from califusion.ledger.icrc3 import account_from_value, account_value, leb128, sleb128


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        # ICRC.md and ICRC-3 HASHINGVALUES.md
        (Nat(42), "684888c0ebb17f374298b65ee2807526c066094c701bcc7ebbe1c1095f494fc1"),
        (Int(-42), "de5a6f78116eca62d7fc5ce159d23ae6b889b365a1739ad2cf36f925a140d0cc"),
        (
            Text("Hello, World!"),
            "dffd6021bb2bd5b0af676290809ec3a53191dd81c7f70a4b28688a362182986f",
        ),
        (
            Blob(bytes([1, 2, 3, 4])),
            "9f64a747e1b97f131fabb6b447296c9b6f0201e79fb3c5356e6c77e89b6a806a",
        ),
        (
            Array((Nat(3), Text("foo"), Blob(b"\x05\x06"))),
            "514a04011caa503990d446b7dec5d79e19c221ae607fb08b2848c67734d468d6",
        ),
        (
            Map(
                (
                    (
                        "from",
                        Blob(bytes.fromhex("00abcdef0012340056789a00bcdef000012345678900abcdef01")),
                    ),
                    (
                        "to",
                        Blob(bytes.fromhex("00ab0def0012340056789a00bcdef000012345678900abcdef01")),
                    ),
                    ("amount", Nat(42)),
                    ("created_at", Nat(1699218263)),
                    ("memo", Nat(0)),
                )
            ),
            "c56ece650e1de4269c5bdeff7875949e3e2033f85b2d193c2ff4f7f78bdcfc75",
        ),
        # The IC interface spec's representation-independent hash example (as in DFINITY's
        # rs/ledger_suite/icrc1/src/hash.rs check_interface_spec_example).
        (
            Map(
                (
                    ("request_type", Text("call")),
                    ("canister_id", Blob(bytes.fromhex("00000000000004d2"))),
                    ("method_name", Text("hello")),
                    ("arg", Blob(b"DIDL\x00\xfd*")),
                )
            ),
            "8781291c347db32a9d8c10eb62b710fce5a93be676474c42babc74c51858f94b",
        ),
    ],
)
def test_hash_vectors(value: Value, expected: str) -> None:
    assert hash_value(value).hex() == expected


def test_map_hash_ignores_entry_order() -> None:
    forward = Map((("a", Nat(1)), ("b", Text("x"))))
    backward = Map((("b", Text("x")), ("a", Nat(1))))
    assert hash_value(forward) == hash_value(backward)


@pytest.mark.parametrize(
    ("n", "encoded"),
    [
        (0, "00"),
        (127, "7f"),
        (128, "8001"),
        (624485, "e58e26"),
        (2**64 - 1, "ffffffffffffffffff01"),
    ],
)
def test_leb128(n: int, encoded: str) -> None:
    assert leb128(n).hex() == encoded


@pytest.mark.parametrize(
    ("n", "encoded"),
    [
        (0, "00"),
        (63, "3f"),
        (64, "c000"),
        (-1, "7f"),
        (-64, "40"),
        (-65, "bf7f"),
        (-123456, "c0bb78"),
    ],
)
def test_sleb128(n: int, encoded: str) -> None:
    assert sleb128(n).hex() == encoded


def test_nat_rejects_negative_bool_and_float() -> None:
    for bad in (-1, True, 1.0):
        with pytest.raises(InvalidInput):
            Nat(bad)  # type: ignore[arg-type]


def test_account_value_is_array_of_blobs() -> None:
    owner = Principal(b"\x00\x00\x00\x00\x00\xf0\x13x\x01\x01")
    assert account_value(Account(owner)) == Array((Blob(owner.raw),))
    subaccount = bytes(31) + b"\x07"
    two = account_value(Account(owner, subaccount))
    assert two == Array((Blob(owner.raw), Blob(subaccount)))
    assert account_from_value(two) == Account(owner, subaccount)
    # The default subaccount and no subaccount are one account, encoded as [owner].
    assert account_value(Account(owner, bytes(32))) == Array((Blob(owner.raw),))


def test_account_from_value_rejects_malformed() -> None:
    for bad in (Array(()), Array((Nat(1),)), Blob(b"x"), Array((Blob(b"a"), Blob(b"short")))):
        with pytest.raises(InvalidInput):
            account_from_value(bad)


def test_json_form_is_canonical() -> None:
    value = Map((("b", Nat(2**70)), ("a", Array((Int(-5), Blob(b"\x00\xff"), Text("é"))))))
    text = encode_value(value)
    assert text == (
        '{"Map":[["a",{"Array":[{"Int":"-5"},{"Blob":"00ff"},{"Text":"é"}]}],'
        '["b",{"Nat":"1180591620717411303424"}]]}'
    )
    assert hash_value(decode_value(text)) == hash_value(value)


@pytest.mark.parametrize(
    "text",
    ['{"Nat":"-1"}', '{"Nat":1}', '{"Blob":"zz"}', '{"Map":[["a"]]}', '{"Float":"1"}', "[]", "{"],
)
def test_json_form_rejects_malformed(text: str) -> None:
    with pytest.raises(InvalidInput):
        decode_value(text)


_leaves = st.one_of(
    st.integers(min_value=0, max_value=2**80).map(Nat),
    st.integers(min_value=-(2**80), max_value=2**80).map(Int),
    st.text(max_size=8).map(Text),
    st.binary(max_size=8).map(Blob),
)
_values = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4).map(lambda items: Array(tuple(items))),
        st.dictionaries(st.text(max_size=4), children, max_size=4).map(
            lambda d: Map(tuple(d.items()))
        ),
    ),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(_values)
def test_json_round_trip_keeps_the_hash(value: Value) -> None:
    assert hash_value(decode_value(encode_value(value))) == hash_value(value)


# --- ICRC.md account and principal text vectors ------------------------------------------------

OWNER_TEXT = "k2t6j-2nvnp-4zjm3-25dtz-6xhaa-c7boj-5gayf-oj3xs-i43lp-teztq-6ae"


@pytest.mark.parametrize(
    ("subaccount", "text"),
    [
        (None, OWNER_TEXT),
        (bytes(32), OWNER_TEXT),
        (bytes(31) + b"\x01", f"{OWNER_TEXT}-6cc627i.1"),
        (
            bytes(range(1, 33)),
            f"{OWNER_TEXT}-dfxgiyy.102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
        ),
    ],
)
def test_icrc_md_account_text_vectors(subaccount: bytes | None, text: str) -> None:
    account = Account(Principal.from_text(OWNER_TEXT), subaccount)
    assert account.to_text() == text
    assert Account.from_text(text) == account


def test_icrc_md_account_text_rejections() -> None:
    with pytest.raises(InvalidInput):
        Account.from_text(f"{OWNER_TEXT}-6cc627i.01")
    with pytest.raises(InvalidInput):
        Account.from_text(f"{OWNER_TEXT}-6cc627j.1")


@pytest.mark.parametrize(
    ("raw", "text"),
    [(b"", "aaaaa-aa"), (b"\x04", "2vxsx-fae"), (b"\xab\xcd\x01", "em77e-bvlzu-aq")],
)
def test_icrc_md_principal_vectors(raw: bytes, text: str) -> None:
    assert Principal(raw).to_text() == text
    assert Principal.from_text(text) == Principal(raw)


def test_icrc3_readme_example_1_round_trips() -> None:
    """ICRC-3 README "Example 1: Transfer with required parameters only", as a Value."""
    phash = bytes.fromhex("b80d29e591604cd4603a2a7cc533142127b823e9a524b71443244b2dd5b08613")
    sender = bytes.fromhex("00000000023002170101")
    receiver = bytes.fromhex("09146193797a6cab8617eef95f164094d3f87ce90d9eb27e01400c7902")
    value = Map(
        (
            ("fee", Nat(10_000)),
            ("phash", Blob(phash)),
            ("ts", Nat(1_753_344_727_778_561_060)),
            (
                "tx",
                Map(
                    (
                        ("amt", Nat(85_224_322_205)),
                        ("from", Array((Blob(sender),))),
                        ("op", Text("xfer")),
                        ("to", Array((Blob(receiver),))),
                    )
                ),
            ),
        )
    )
    block = Block.from_value(value)
    assert block.tx.op == Op.XFER and block.tx.fee is None and block.fee_charged == 10_000
    assert block.parent_hash == phash and block.block_type == "1xfer"
    assert block.tx.from_ == Account(Principal(sender))
    assert hash_value(block.to_value()) == hash_value(value) == block.hash()
