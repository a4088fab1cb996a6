"""Escrow identifiers (known answers), memos, and signed publisher statements."""

from __future__ import annotations

import hashlib

import pytest

from califusion.core.errors import BadSignature, InvalidInput
from califusion.crypto.identity import Identity
from califusion.crypto.principal import Account, Principal
from califusion.ledger.escrow_ids import (
    ESCROW_PRINCIPAL,
    DepositKind,
    PaymentKind,
    deposit_memo,
    escrow_account,
    escrow_subaccount,
    parse_deposit_memo,
    payment_memo,
)
from califusion.ledger.escrow_terms import (
    CloseStatement,
    EscrowTerms,
    Outcome,
    SignedStatement,
    decode_statement,
    encode_statement,
    sign_statement,
    terms_differences,
)

from .helpers import JOB, PUBLISHER, TRAINERS, round_statement, terms

ESCROW_TEXT = "qfcbz-ab2kn-2s4jw-p5ih2-b6ygc-3zae4-oa7dm-rjola-dmct3-qqkmg-oqc"
JOB_SUBACCOUNT = "e5cb426a545e8a95a9fb38bc470e51b8fe06c3f8180f5acb1dca38d74a1e393e"


def test_the_escrow_principal_is_opaque_and_derived_from_the_domain() -> None:
    assert ESCROW_PRINCIPAL.raw == hashlib.sha224(b"califusion/escrow/v1").digest() + b"\x01"
    assert ESCROW_PRINCIPAL.to_text() == ESCROW_TEXT
    # No key can authenticate as it: self-authenticating principals end in 0x02.
    assert Identity.generate().principal.raw[-1] == 2 != ESCROW_PRINCIPAL.raw[-1]


def test_job_escrow_account_known_answer() -> None:
    expected = hashlib.sha256(b"califusion/escrow/v1" + JOB.encode()).hexdigest()
    assert escrow_subaccount(JOB).hex() == expected == JOB_SUBACCOUNT
    account = escrow_account(JOB)
    assert account == Account(ESCROW_PRINCIPAL, bytes.fromhex(JOB_SUBACCOUNT))
    assert Account.from_text(account.to_text()) == account
    assert account.to_text() == f"{ESCROW_TEXT}-ajtxzaa.{JOB_SUBACCOUNT}"


def test_memos_fit_the_ledger_and_name_job_kind_batch_and_index() -> None:
    memo = deposit_memo(JOB, DepositKind.STAKE)
    assert memo.hex() == "63663153" + JOB_SUBACCOUNT[:32]
    parsed = parse_deposit_memo(memo)
    assert parsed is not None and parsed.kind == "S"
    assert (
        parse_deposit_memo(memo + b"x") is None and parse_deposit_memo(b"cf1Z" + memo[4:]) is None
    )
    pay = payment_memo(JOB, PaymentKind.PAYOUT, 0, 1)
    assert len(pay) == 32
    assert pay.hex() == "63663150" + JOB_SUBACCOUNT[:32] + "00" * 8 + "00000001"
    assert payment_memo(JOB, PaymentKind.SALE, 7, 1) != payment_memo(JOB, PaymentKind.SALE, 7, 2)
    with pytest.raises(InvalidInput):
        payment_memo(JOB, PaymentKind.SALE, 2**64, 0)


@pytest.mark.parametrize(
    "statement",
    [
        terms(),
        round_statement(1, {TRAINERS[0]: 3, TRAINERS[1]: 4}),
        CloseStatement(JOB, Outcome.FAILED),
    ],
)
def test_statements_round_trip_signed(statement: object) -> None:
    signed = sign_statement(PUBLISHER, statement)  # type: ignore[arg-type]
    assert signed.signer == PUBLISHER.principal
    assert signed.verify() == statement
    assert SignedStatement.from_dict(signed.to_dict()) == signed


def test_a_tampered_or_foreign_statement_is_refused() -> None:
    signed = sign_statement(PUBLISHER, terms())
    tampered = signed.payload.replace(b'"stake":10000000', b'"stake":10000001')
    assert tampered != signed.payload
    with pytest.raises(BadSignature):
        SignedStatement(tampered, signed.signing_public, signed.signature).verify()
    other = Identity.generate()
    with pytest.raises(BadSignature):
        SignedStatement(signed.payload, other.public().signing_public, signed.signature).verify()


def test_only_canonical_statements_parse() -> None:
    payload = encode_statement(terms())
    assert decode_statement(payload) == terms()
    spaced = payload.replace(b",", b", ")
    with pytest.raises(InvalidInput, match="canonical"):
        decode_statement(spaced)
    with pytest.raises(InvalidInput):
        decode_statement(b'{"type":"terms"}')
    with pytest.raises(InvalidInput):
        decode_statement(b"not json")


def test_terms_are_validated() -> None:
    with pytest.raises(InvalidInput):
        terms(rounds=0)
    with pytest.raises(InvalidInput):
        terms(sale_publisher_bps=10_001)
    with pytest.raises(InvalidInput):
        terms(stake=-1)


def test_terms_differences_name_the_fields() -> None:
    t = terms()
    fields = {"publisher": PUBLISHER.principal.to_text(), "stake": t.stake, "price": t.price}
    assert terms_differences(t, fields) == []
    assert terms_differences(t, {**fields, "stake": 1, "publisher": "aaaaa-aa"}) == [
        "publisher",
        "stake",
    ]
    assert isinstance(t, EscrowTerms) and isinstance(PUBLISHER.principal, Principal)
