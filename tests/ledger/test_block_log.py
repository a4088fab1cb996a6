"""ICRC-3 block log: layout, chaining, tip certificates and re-verification after tampering."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest
from sqlalchemy import select, update

from califusion.core.errors import BadSignature
from califusion.crypto.principal import Account
from califusion.ledger import (
    ApproveArgs,
    Block,
    Ledger,
    Map,
    Nat,
    Ok,
    TipCertificate,
    TransferArg,
    TransferFromArgs,
    hash_value,
    verify_store,
    verify_tip_certificate,
)
from califusion.ledger.schema import balances_table, blocks_table, tip_table

from .helpers import ALICE, BOB, CAROL, MINTER, acct

Fund = Callable[[Account, int], None]


@pytest.fixture
def busy_ledger(ledger: Ledger, fund: Fund) -> Ledger:
    """Blocks of every kind: mint, xfer, approve, 2xfer, burn, 2burn."""
    fund(Account(ALICE), 1_000_000)
    ok = [
        ledger.icrc1_transfer(ALICE, TransferArg(to=acct(BOB, 2), amount=100_000, memo=b"job-1")),
        ledger.icrc2_approve(
            ALICE,
            ApproveArgs(
                spender=Account(CAROL),
                amount=300_000,
                expected_allowance=0,
                expires_at=ledger.now_ns() + 10**12,
                created_at_time=ledger.now_ns(),
            ),
        ),
        ledger.icrc2_transfer_from(
            CAROL, TransferFromArgs(from_=Account(ALICE), to=Account(CAROL), amount=50_000)
        ),
        ledger.icrc1_transfer(ALICE, TransferArg(to=Account(MINTER), amount=20_000)),
        ledger.icrc2_transfer_from(
            CAROL, TransferFromArgs(from_=Account(ALICE), to=Account(MINTER), amount=30_000)
        ),
    ]
    assert ok == [Ok(i) for i in range(1, 6)]
    return ledger


def test_blocks_chain_by_phash(busy_ledger: Ledger) -> None:
    result = busy_ledger.icrc3_get_blocks(0, 100)
    assert result.log_length == 6
    assert [b.id for b in result.blocks] == list(range(6))
    values = [b.block for b in result.blocks]
    assert all(isinstance(v, Map) for v in values)
    assert values[0].get("phash") is None  # type: ignore[union-attr]
    for parent, child in itertools.pairwise(values):
        assert child.get("phash").value == hash_value(parent)  # type: ignore[union-attr]
    for value in values:
        assert value.get("btype") is None  # type: ignore[union-attr]  # legacy ICRC-1/2 blocks
        assert isinstance(value.get("ts"), Nat)  # type: ignore[union-attr]


def test_block_kinds_and_tx_fields(busy_ledger: Ledger) -> None:
    blocks = [Block.from_value(b.block) for b in busy_ledger.icrc3_get_blocks(0, 100).blocks]
    assert [b.block_type for b in blocks] == [
        "1mint",
        "1xfer",
        "2approve",
        "2xfer",
        "1burn",
        "2burn",
    ]
    approve = blocks[2].tx
    assert approve.spender == Account(CAROL) and approve.amount == 300_000
    assert approve.expected_allowance == 0 and approve.expires_at is not None
    assert approve.created_at_time is not None and blocks[2].effective_fee == 10_000
    assert blocks[1].tx.memo == b"job-1" and blocks[1].tx.to == acct(BOB, 2)
    assert blocks[3].tx.spender == Account(CAROL)


def test_get_blocks_ranges(busy_ledger: Ledger) -> None:
    assert [b.id for b in busy_ledger.icrc3_get_blocks(4, 10).blocks] == [4, 5]
    assert busy_ledger.icrc3_get_blocks(6, 10).blocks == []
    assert busy_ledger.icrc3_get_blocks(0, 0).blocks == []


def test_search_columns_find_a_payment_by_memo(busy_ledger: Ledger) -> None:
    stmt = select(blocks_table.c.idx, blocks_table.c.kind, blocks_table.c.amount).where(
        blocks_table.c.memo == b"job-1"
    )
    with busy_ledger.store.engine.connect() as conn:
        assert conn.execute(stmt).all() == [(1, "1xfer", 100_000)]


def test_supported_block_types(ledger: Ledger) -> None:
    kinds = [t.block_type for t in ledger.icrc3_supported_block_types()]
    assert kinds == ["1burn", "1mint", "1xfer", "2approve", "2burn", "2xfer"]


def test_tip_certificate(busy_ledger: Ledger, ledger: Ledger) -> None:
    certificate = busy_ledger.icrc3_get_tip_certificate()
    assert certificate is not None
    last = busy_ledger.icrc3_get_blocks(5, 1).blocks[0].block
    assert certificate.last_block_index == 5
    assert certificate.last_block_hash == hash_value(last)
    verify_tip_certificate(certificate, busy_ledger.public_key)


def test_tip_certificate_rejects_tampering(busy_ledger: Ledger) -> None:
    certificate = busy_ledger.icrc3_get_tip_certificate()
    assert certificate is not None
    forged = TipCertificate(4, certificate.last_block_hash, certificate.signature)
    with pytest.raises(BadSignature):
        verify_tip_certificate(forged, busy_ledger.public_key)
    with pytest.raises(BadSignature):
        verify_tip_certificate(certificate, bytes(32))


def test_no_tip_certificate_before_the_first_block(ledger: Ledger) -> None:
    assert ledger.icrc3_get_tip_certificate() is None


def test_verify_recomputes_everything(busy_ledger: Ledger) -> None:
    report = verify_store(busy_ledger.store)
    assert report.ok, report.summary()
    assert report.blocks_checked == 6
    assert report.total_supply == busy_ledger.icrc1_total_supply()
    assert report.balances[Account(ALICE)] == busy_ledger.icrc1_balance_of(Account(ALICE))
    assert report.allowances[(Account(ALICE), Account(CAROL))][0] == 300_000 - 60_000 - 30_000


def _edit(ledger: Ledger, statement: object) -> None:
    with ledger.store.engine.begin() as conn:
        conn.execute(statement)  # type: ignore[call-overload]


def test_verify_reports_an_edited_block(busy_ledger: Ledger) -> None:
    with busy_ledger.store.engine.connect() as conn:
        encoded = conn.execute(
            select(blocks_table.c.encoded).where(blocks_table.c.idx == 1)
        ).scalar_one()
    forged = encoded.replace('"Nat":"100000"', '"Nat":"900000"')
    assert forged != encoded
    _edit(busy_ledger, update(blocks_table).where(blocks_table.c.idx == 1).values(encoded=forged))
    report = verify_store(busy_ledger.store)
    found = {(d.block_index, d.subject) for d in report.discrepancies}
    assert (1, "stored hash") in found
    assert (2, "phash") in found
    assert (1, "amount column") in found
    assert any(d.subject.startswith("balance of") for d in report.discrepancies)


def test_verify_reports_an_edited_amount_column(busy_ledger: Ledger) -> None:
    _edit(busy_ledger, update(blocks_table).where(blocks_table.c.idx == 3).values(amount=1))
    report = verify_store(busy_ledger.store)
    assert [(d.block_index, d.subject, d.expected, d.found) for d in report.discrepancies] == [
        (3, "amount column", "50000", "1")
    ]


def test_verify_reports_an_edited_balance(busy_ledger: Ledger) -> None:
    balance = busy_ledger.icrc1_balance_of(Account(ALICE))
    owner = Account(ALICE).owner.raw
    _edit(
        busy_ledger,
        update(balances_table).where(balances_table.c.owner == owner).values(amount=balance + 5),
    )
    report = verify_store(busy_ledger.store)
    assert [(d.subject, d.expected, d.found) for d in report.discrepancies] == [
        (f"balance of {Account(ALICE)}", str(balance), str(balance + 5))
    ]
    assert "1 discrepancies" in report.summary()


def test_verify_reports_an_edited_supply_and_a_missing_block(busy_ledger: Ledger) -> None:
    _edit(busy_ledger, update(tip_table).values(total_supply=1))
    _edit(busy_ledger, blocks_table.delete().where(blocks_table.c.idx == 5))
    subjects = {d.subject for d in verify_store(busy_ledger.store).discrepancies}
    assert {"total supply", "tip length", "tip hash"} <= subjects
