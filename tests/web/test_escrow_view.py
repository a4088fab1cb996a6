"""The job page's reading of an escrow: payments counted by memo *and* source, summed per owner."""

from __future__ import annotations

from califusion.crypto.identity import Identity
from califusion.crypto.principal import Account
from califusion.ledger.escrow_ids import PaymentKind, escrow_account, payment_memo
from califusion.ledger.escrow_store import EscrowStatus
from califusion.web.escrow import escrow_view
from califusion.web.money import BlockRow, describe_memo

JOB = "job-" + "a" * 32
OTHER = "job-" + "b" * 32


def _row(index: int, source: Account, to: Account, amount: int, memo: bytes) -> BlockRow:
    return BlockRow(
        index=index,
        time_s=1.0 + index,
        kind="1xfer",
        op="xfer",
        from_=source,
        to=to,
        spender=None,
        amount=amount,
        fee=10_000,
        memo=memo.hex(),
        escrow=describe_memo(memo),
        hash="",
        parent_hash="",
    )


def test_payments_are_counted_by_memo_and_source() -> None:
    alice, bob, mallory = (Identity.generate().principal for _ in range(3))
    escrow = escrow_account(JOB)
    rows = [
        _row(5, escrow, Account(alice), 500, payment_memo(JOB, PaymentKind.PAYOUT, 0, 0)),
        _row(6, escrow, Account(bob), 300, payment_memo(JOB, PaymentKind.PAYOUT, 0, 1)),
        _row(9, escrow, Account(alice), 70, payment_memo(JOB, PaymentKind.SALE, 8, 0)),
        # a lookalike: the right memo, sent by someone else
        _row(7, Account(mallory), Account(bob), 10**9, payment_memo(JOB, PaymentKind.PAYOUT, 0, 2)),
        # another job's payment
        _row(
            8,
            escrow_account(OTHER),
            Account(bob),
            55,
            payment_memo(OTHER, PaymentKind.PAYOUT, 0, 0),
        ),
        # a deposit is not a payment
        _row(4, Account(alice), escrow, 1_000, b"plain memo"),
    ]
    status = EscrowStatus(job_id=JOB, account=escrow, balance=0, terms=None, funded=800)
    view = escrow_view(status, rows)
    assert [p.block for p in view.payments] == [5, 6, 9]
    assert [p.label for p in view.payments] == ["payout", "payout", "sale proceeds"]
    assert view.payout_of(alice.to_text()) == 570
    assert view.payout_of(bob.to_text()) == 300
    assert view.payout_of(mallory.to_text()) is None
    assert view.outcome is None and not view.bound
