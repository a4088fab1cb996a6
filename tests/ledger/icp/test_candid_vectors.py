"""Our Candid codec against DFINITY's reference implementation, byte for byte.

The vectors (vectors.json) were made by @dfinity/candid (tools/candid-vectors/make_vectors.mjs).

Replies — exact: decoding the reference bytes of every reply (``Ok`` and every error case of
``TransferResult``, ``ApproveResult`` and ``TransferFromResult``, ``nat`` beyond 2^64,
``Allowance``, metadata, …) gives exactly the expected dataclass.

Arguments — what holds, precisely:

1. Our bytes are NOT identical to the reference bytes, except for the empty argument list:
   the type tables differ. icp-py-core writes the table parent-first (the argument's record at
   index 0) and gives ``opt blob`` and ``opt Subaccount`` separate entries; the JS encoder writes
   children first (``vec nat8`` at index 0) and shares equal types. Candid fixes neither choice,
   so both tables are valid descriptions of the same types.
2. After the type table, the value bytes ARE identical to the reference's, for every vector.
3. When vectors.json was written, the reference decoder decoded our bytes (``ours_hex``) to
   exactly the vector's value; our encoding today must equal those recorded bytes, so any change
   to our bytes fails here until the vectors are regenerated and re-checked by the reference.
4. icp-py-core decodes the reference bytes and our bytes to equal values.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from califusion.core.errors import InvalidInput
from califusion.crypto.principal import Account, Principal
from califusion.ledger.icp import LedgerProtocolError, candid_codec
from califusion.ledger.icp import replies as from_candid
from califusion.ledger.icp._candid import decode, method
from califusion.ledger.types import TransferArg

from .vectors import Vector, args, encode_ours, expected, replies, split_message

DECODERS = {
    "TransferResult": candid_codec.decode_transfer_result,
    "ApproveResult": candid_codec.decode_approve_result,
    "TransferFromResult": candid_codec.decode_transfer_from_result,
    "nat": candid_codec.decode_nat,
    "nat8": candid_codec.decode_nat8,
    "text": candid_codec.decode_text,
    "Allowance": candid_codec.decode_allowance,
    "AllowanceWithExtraField": candid_codec.decode_allowance,
    "opt Account": candid_codec.decode_minting_account,
    "vec record { text; MetadataValue }": candid_codec.decode_metadata,
    "vec StandardRecord": candid_codec.decode_supported_standards,
}
ARG_METHODS = {
    "()": "icrc1_name",
    "Account": "icrc1_balance_of",
    "TransferArg": "icrc1_transfer",
    "ApproveArgs": "icrc2_approve",
    "TransferFromArgs": "icrc2_transfer_from",
    "AllowanceArgs": "icrc2_allowance",
}
ARGS = args()
REPLIES = replies()


def _ids(vectors: list[Vector]) -> list[str]:
    return [vector.name for vector in vectors]


def test_the_vectors_cover_every_case() -> None:
    names = {vector.name for vector in ARGS + REPLIES}
    for prefix, errors in {
        "transfer_result": "BadFee BadBurn InsufficientFunds TooOld CreatedInFuture Duplicate "
        "TemporarilyUnavailable GenericError",
        "approve_result": "BadFee InsufficientFunds AllowanceChanged Expired TooOld "
        "CreatedInFuture Duplicate TemporarilyUnavailable GenericError",
        "transfer_from_result": "BadFee BadBurn InsufficientFunds InsufficientAllowance TooOld "
        "CreatedInFuture Duplicate TemporarilyUnavailable GenericError",
    }.items():
        assert f"{prefix}.Ok" in names
        assert {f"{prefix}.Err.{error}" for error in errors.split()} <= names
    for optional in ("from_subaccount", "fee", "memo", "created_at_time", "big_amount"):
        assert f"transfer_arg.{optional}" in names
        assert f"approve_args.{optional}" in names
    for optional in ("expected_allowance", "expires_at"):
        assert f"approve_args.{optional}" in names
    assert all(vector.ours is not None for vector in ARGS), "regenerate with --ours"


@pytest.mark.parametrize("vector", REPLIES, ids=_ids(REPLIES))
def test_reference_reply_decodes_to_the_expected_value(vector: Vector) -> None:
    assert DECODERS[vector.type](vector.reference) == expected(vector)


@pytest.mark.parametrize("vector", ARGS, ids=_ids(ARGS))
def test_our_argument_bytes_are_the_ones_the_reference_decoder_accepted(vector: Vector) -> None:
    assert encode_ours(vector) == vector.ours


@pytest.mark.parametrize("vector", ARGS, ids=_ids(ARGS))
def test_our_argument_values_are_byte_identical_to_the_reference(vector: Vector) -> None:
    _, ours_refs, ours_values = split_message(encode_ours(vector))
    _, ref_refs, ref_values = split_message(vector.reference)
    assert len(ours_refs) == len(ref_refs)
    assert ours_values == ref_values


def test_only_the_empty_argument_list_is_identical_in_full() -> None:
    identical = {vector.name for vector in ARGS if encode_ours(vector) == vector.reference}
    assert identical == {"no_args"}


@pytest.mark.parametrize("vector", ARGS, ids=_ids(ARGS))
def test_a_decoder_reads_ours_and_the_reference_alike(vector: Vector) -> None:
    types = method(ARG_METHODS[vector.type]).args
    assert decode(encode_ours(vector), types) == decode(vector.reference, types)


def test_a_zero_subaccount_is_sent_as_null() -> None:
    owner = Principal(b"\xa1" * 10)
    assert candid_codec.encode_account(Account(owner, bytes(32))) == candid_codec.encode_account(
        Account(owner)
    )


def test_amounts_beyond_nat64_survive() -> None:
    arg = TransferArg(to=Account(Principal(b"\x01")), amount=2**200 + 1)
    (value,) = decode(candid_codec.encode_transfer_arg(arg), method("icrc1_transfer").args)
    assert isinstance(value, dict)
    assert value["amount"] == 2**200 + 1


def test_a_created_at_time_beyond_nat64_is_refused_before_encoding() -> None:
    with pytest.raises(InvalidInput):
        TransferArg(to=Account(Principal(b"\x01")), amount=1, created_at_time=2**64)


BY_NAME = {vector.name: vector for vector in ARGS + REPLIES}


@pytest.mark.parametrize(
    ("data", "decoder"),
    [
        pytest.param(b"", candid_codec.decode_nat, id="empty"),
        pytest.param(b"DIDL", candid_codec.decode_nat, id="truncated header"),
        pytest.param(b"not candid at all", candid_codec.decode_transfer_result, id="garbage"),
        pytest.param(
            BY_NAME["text.symbol"].reference, candid_codec.decode_nat, id="text where nat"
        ),
        pytest.param(
            BY_NAME["nat.balance"].reference, candid_codec.decode_transfer_result, id="nat"
        ),
        pytest.param(
            BY_NAME["approve_result.Err.Expired"].reference,
            candid_codec.decode_transfer_result,
            id="an ApproveError case in a TransferResult",
        ),
        pytest.param(
            BY_NAME["transfer_result.Err.BadFee"].reference[:-1],
            candid_codec.decode_transfer_result,
            id="cut short",
        ),
        pytest.param(BY_NAME["no_args"].reference, candid_codec.decode_nat, id="no value at all"),
    ],
)
def test_bytes_that_break_the_interface_raise_a_protocol_error(
    data: bytes, decoder: Callable[[bytes], object]
) -> None:
    with pytest.raises(LedgerProtocolError):
        decoder(data)


def test_a_reply_shape_the_interface_forbids_is_refused() -> None:
    with pytest.raises(LedgerProtocolError, match="subaccount"):
        from_candid.account_from_candid({"owner": Principal(b"\x01"), "subaccount": [b"\x01"]})
    with pytest.raises(LedgerProtocolError, match="natural"):
        from_candid.transfer_result_from_candid({"Ok": -1})
    with pytest.raises(LedgerProtocolError, match="unknown error"):
        from_candid.approve_result_from_candid({"Err": {"BadBurn": {"min_burn_amount": 1}}})
