"""IcpLedger without a replica: icp-py-core's real agent talking to a fake replica.

The fake (fake_replica.py) sits at the agent's HTTP boundary, verifies every envelope the way a
replica would (request id, Ed25519 signature, sender, canister) and answers with the recorded
reference reply bytes, so these tests cover IcpLedger → codec → icp-py-core → bytes → our types.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import logging
from collections.abc import Callable
from typing import Any

import pytest

from califusion.core.errors import InvalidInput, NotFound, Unavailable
from califusion.crypto.identity import Identity
from califusion.crypto.principal import Account, Principal
from califusion.ledger.api import LedgerAPI
from califusion.ledger.icp import IcpLedger, LedgerProtocolError, candid_codec
from califusion.ledger.icp import ledger as icp_ledger_module
from califusion.ledger.icp._agent import blst_missing_reason
from califusion.ledger.types import AllowanceArgs, ApproveArgs, TransferArg, TransferFromArgs

from .fake_replica import FakeReplica
from .vectors import Vector, expected, replies

CANISTER = "ryjl3-tyaaa-aaaaa-aaaba-cai"  # the ICP ledger's id on mainnet
URL = "https://icp-api.io"
BOB = Account(Principal(b"\xb0" * 10))
SEED = bytes(range(32))

REPLIES = {vector.name: vector for vector in replies()}


@pytest.fixture
def identity() -> Identity:
    return Identity.from_private_bytes(SEED, bytes([7] * 32))


@pytest.fixture
def replica(identity: Identity) -> FakeReplica:
    return FakeReplica(Principal.from_text(CANISTER), identity.public())


@pytest.fixture
def unverified(identity: Identity, replica: FakeReplica) -> IcpLedger:
    """An IcpLedger with certificate verification explicitly off (the fake cannot sign)."""
    return IcpLedger(URL, CANISTER, identity, verify_certificate=False, transport=replica)


@pytest.fixture
def blst_present(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend the blst binding is installed, so verification is attempted for real."""
    monkeypatch.setattr(icp_ledger_module, "blst_missing_reason", lambda: None)


# --- certificate verification ------------------------------------------------------------------


def test_verify_certificate_defaults_to_true() -> None:
    parameter = inspect.signature(IcpLedger).parameters["verify_certificate"]
    assert parameter.default is True


def test_by_default_a_missing_blst_refuses_construction_before_any_call(
    identity: Identity, replica: FakeReplica, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(icp_ledger_module, "blst_missing_reason", lambda: "no blst here")
    with pytest.raises(Unavailable, match=r"no blst here.*supranational/blst"):
        IcpLedger(URL, CANISTER, identity, transport=replica)
    assert replica.seen == []


def test_blst_is_really_missing_here() -> None:
    if importlib.util.find_spec("blst") is not None:
        pytest.skip("the blst binding is installed")
    reason = blst_missing_reason()
    assert reason is not None
    assert "blst" in reason


@pytest.mark.usefixtures("blst_present")
def test_with_verification_on_a_certificate_that_does_not_verify_is_refused(
    identity: Identity, replica: FakeReplica
) -> None:
    ledger = IcpLedger(URL, CANISTER, identity, transport=replica)
    assert ledger.verify_certificate
    replica.replies["icrc1_transfer"] = REPLIES["transfer_result.Ok"].reference
    with pytest.raises(Unavailable, match="may or may not have been executed"):
        ledger.icrc1_transfer(TransferArg(to=BOB, amount=1))
    # icp-py-core checks the certificate only after submitting: hence the check at construction.
    assert [call.method for call in replica.seen] == ["icrc1_transfer"]


def test_turning_verification_off_is_logged(
    identity: Identity, replica: FakeReplica, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="califusion.ledger.icp.ledger"):
        IcpLedger(URL, CANISTER, identity, verify_certificate=False, transport=replica)
    (record,) = caplog.records
    assert "verification is OFF" in record.getMessage()
    assert record.__dict__["canister_id"] == CANISTER


# --- the caller --------------------------------------------------------------------------------


def test_the_caller_is_the_identity_principal_as_icp_py_core_derives_it(
    identity: Identity, unverified: IcpLedger
) -> None:
    icp_identity: Any = importlib.import_module("icp_identity.identity")
    theirs = icp_identity.Identity(privkey=SEED.hex(), type="ed25519").sender().bytes
    assert theirs == identity.principal.raw == unverified.caller.raw
    assert isinstance(unverified, LedgerAPI)
    api: LedgerAPI = unverified
    assert api.caller == identity.principal


# --- update calls ------------------------------------------------------------------------------

UpdateCase = tuple[str, object, Callable[[IcpLedger, Any], object], Callable[[Any], bytes]]
UPDATES: dict[str, UpdateCase] = {
    "transfer_result": (
        "icrc1_transfer",
        TransferArg(to=BOB, amount=10**20, memo=b"job:1/reward", created_at_time=17),
        IcpLedger.icrc1_transfer,
        candid_codec.encode_transfer_arg,
    ),
    "approve_result": (
        "icrc2_approve",
        ApproveArgs(spender=BOB, amount=5, expected_allowance=0, expires_at=2**63),
        IcpLedger.icrc2_approve,
        candid_codec.encode_approve_args,
    ),
    "transfer_from_result": (
        "icrc2_transfer_from",
        TransferFromArgs(from_=Account(Principal(b"\xa1" * 10)), to=BOB, amount=3),
        IcpLedger.icrc2_transfer_from,
        candid_codec.encode_transfer_from_args,
    ),
}
UPDATE_REPLIES = [v for v in REPLIES.values() if v.name.split(".")[0] in UPDATES]


@pytest.mark.parametrize("vector", UPDATE_REPLIES, ids=[v.name for v in UPDATE_REPLIES])
def test_update_calls_return_each_recorded_reply(
    vector: Vector, unverified: IcpLedger, replica: FakeReplica
) -> None:
    method, arg, call, encode = UPDATES[vector.name.split(".")[0]]
    replica.replies[method] = vector.reference
    assert call(unverified, arg) == expected(vector)
    (seen,) = replica.seen
    assert (seen.request_type, seen.method, seen.arg) == ("call", method, encode(arg))


# --- queries -----------------------------------------------------------------------------------

QUERIES: list[tuple[str, str, Callable[[IcpLedger], object]]] = [
    ("icrc1_name", "text.name", lambda ledger: ledger.icrc1_name()),
    ("icrc1_symbol", "text.symbol", lambda ledger: ledger.icrc1_symbol()),
    ("icrc1_decimals", "nat8.decimals", lambda ledger: ledger.icrc1_decimals()),
    ("icrc1_fee", "nat.balance", lambda ledger: ledger.icrc1_fee()),
    ("icrc1_total_supply", "nat.big", lambda ledger: ledger.icrc1_total_supply()),
    ("icrc1_metadata", "metadata.ledger", lambda ledger: ledger.icrc1_metadata()),
    (
        "icrc1_minting_account",
        "minting_account.subaccount",
        lambda ledger: ledger.icrc1_minting_account(),
    ),
    (
        "icrc1_supported_standards",
        "supported_standards.icrc1_icrc2",
        lambda ledger: ledger.icrc1_supported_standards(),
    ),
    ("icrc1_balance_of", "nat.big", lambda ledger: ledger.icrc1_balance_of(BOB)),
    (
        "icrc2_allowance",
        "allowance.expiring",
        lambda ledger: ledger.icrc2_allowance(AllowanceArgs(BOB, BOB)),
    ),
]


@pytest.mark.parametrize(("method", "name", "call"), QUERIES, ids=[q[0] for q in QUERIES])
def test_queries_return_the_recorded_reply(
    method: str,
    name: str,
    call: Callable[[IcpLedger], object],
    unverified: IcpLedger,
    replica: FakeReplica,
) -> None:
    replica.replies[method] = REPLIES[name].reference
    assert call(unverified) == expected(REPLIES[name])
    (seen,) = replica.seen
    assert (seen.request_type, seen.method) == ("query", method)


def test_query_arguments_are_our_encoding(unverified: IcpLedger, replica: FakeReplica) -> None:
    replica.replies["icrc1_balance_of"] = REPLIES["nat.zero"].reference
    replica.replies["icrc1_name"] = REPLIES["text.name"].reference
    unverified.icrc1_balance_of(BOB)
    unverified.icrc1_name()
    assert [call.arg for call in replica.seen] == [
        candid_codec.encode_account(BOB),
        candid_codec.encode_no_args(),
    ]


def test_certified_reads_call_query_methods_as_updates(
    identity: Identity, replica: FakeReplica
) -> None:
    ledger = IcpLedger(
        URL, CANISTER, identity, verify_certificate=False, certified_reads=True, transport=replica
    )
    replica.replies["icrc1_balance_of"] = REPLIES["nat.balance"].reference
    assert ledger.icrc1_balance_of(BOB) == 123_456_789
    assert [(call.request_type, call.method) for call in replica.seen] == [
        ("call", "icrc1_balance_of")
    ]


# --- errors at the boundary --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error"),
    [(5, InvalidInput), (4, InvalidInput), (3, NotFound), (2, Unavailable), (6, Unavailable)],
)
def test_rejects_become_core_errors(
    code: int, error: type[Exception], unverified: IcpLedger, replica: FakeReplica
) -> None:
    replica.rejects["icrc1_transfer"] = (code, "Canister trapped: memo too long")
    replica.rejects["icrc1_balance_of"] = (code, "no")
    with pytest.raises(error, match="memo too long"):
        unverified.icrc1_transfer(TransferArg(to=BOB, amount=1))
    with pytest.raises(error, match=f"code {code}"):
        unverified.icrc1_balance_of(BOB)


def test_a_reply_of_the_wrong_type_is_a_protocol_error(
    unverified: IcpLedger, replica: FakeReplica
) -> None:
    replica.replies["icrc1_transfer"] = REPLIES["text.symbol"].reference
    replica.replies["icrc1_balance_of"] = REPLIES["allowance.none"].reference
    with pytest.raises(LedgerProtocolError, match="may or may not have been executed"):
        unverified.icrc1_transfer(TransferArg(to=BOB, amount=1))
    with pytest.raises(LedgerProtocolError):
        unverified.icrc1_balance_of(BOB)


def test_an_unreachable_replica_is_unavailable(identity: Identity) -> None:
    # Port 1 on the loopback interface: connection refused at once, through the real client.
    ledger = IcpLedger("http://127.0.0.1:1", CANISTER, identity, verify_certificate=False)
    with pytest.raises(Unavailable, match="unreachable"):
        ledger.icrc1_balance_of(BOB)
    with pytest.raises(Unavailable, match="may or may not have been executed"):
        ledger.icrc1_transfer(TransferArg(to=BOB, amount=1))


@pytest.mark.parametrize(
    ("url", "canister"),
    [("icp-api.io", CANISTER), (URL, "not-a-principal"), (URL, "ryjl3-tyaaa-aaaaa-aaaba-caj")],
)
def test_bad_configuration_is_invalid_input(url: str, canister: str, identity: Identity) -> None:
    with pytest.raises(InvalidInput):
        IcpLedger(url, canister, identity, verify_certificate=False)
