"""The dashboard's link to the escrow, and the escrow of one job as the job page shows it.

:class:`EscrowLink` knows where ``/escrow/v1`` is served (beside ``/ledger/v1``: the
coordinator, or ``califusion ledger serve``) and whether it is there at all: a coordinator run
with ``--no-ledger`` serves none, and its jobs move no money. It hands out the agent-layer money
objects, each with its own signed connections, for the publisher loop
(:class:`~califusion.agent.payments.PublisherPayments`), a trainer thread
(:class:`~califusion.agent.payments.TrainerPayments`) and the buyer
(:class:`~califusion.agent.buyer.BuyerAgent`); the dashboard never builds a ledger argument of
its own for escrow money.

:func:`escrow_view` turns an :class:`~califusion.ledger.escrow_store.EscrowStatus` and the
escrow account's blocks into what the job page shows: funding, stakes, purchases, the outcome,
and every payment the escrow made, summed per recipient. Payments are found by their memo *and*
their source (the job's escrow account), so a lookalike memo from elsewhere counts for nothing.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from califusion.agent.escrow_client import HttpEscrowAPI
from califusion.agent.ledger_client import HttpLedgerAPI
from califusion.agent.payments import PublisherPayments, TrainerPayments
from califusion.core.errors import NotFound, Unavailable
from califusion.crypto.identity import Identity
from califusion.crypto.principal import Account, Principal
from califusion.ledger.escrow_ids import PaymentKind, escrow_account, job_tag
from califusion.ledger.escrow_store import EscrowStatus
from califusion.protocol import JobSpec
from califusion.web.money import BlockRow

__all__ = ["EscrowLink", "EscrowPayment", "EscrowView", "escrow_view", "moves_money"]

log = logging.getLogger(__name__)

PAYMENT_LABELS = {
    PaymentKind.PAYOUT.value: "payout",
    PaymentKind.SALE.value: "sale proceeds",
    PaymentKind.REFUND.value: "refund",
}


def moves_money(spec: JobSpec) -> bool:
    """Whether a job moves tokens (a reward pool, stakes or a price)."""
    return spec.reward_pool > 0 or spec.stake > 0 or spec.price is not None


class EscrowLink:
    """Where the escrow is, whether it is served, and the agents' money objects."""

    def __init__(self, identity: Identity, base_url: str, timeout: float = 15.0) -> None:
        self.identity = identity
        self.base_url = base_url
        self.timeout = timeout
        self.reader = HttpEscrowAPI(base_url, identity, timeout=timeout)  # shared, reads only
        self._served: bool | None = None
        self._lock = threading.Lock()

    def served(self) -> bool:
        """Whether ``/escrow/v1`` answers at the base URL (asked once it has answered either way;
        Unavailable while nothing answers)."""
        with self._lock:
            if self._served is None:
                try:
                    self.reader.status("probe")
                    self._served = True
                except NotFound:
                    self._served = False
                    log.warning("no escrow served: jobs move no money", extra={"at": self.base_url})
            return self._served

    def served_or_false(self) -> bool:
        """:meth:`served`, counting an unreachable ledger as no escrow for now."""
        try:
            return self.served()
        except Unavailable:
            return False

    def status(self, job_id: str) -> EscrowStatus:
        return self.reader.status(job_id)

    def connections(self) -> tuple[HttpLedgerAPI, HttpEscrowAPI]:
        """A fresh signed ledger and escrow connection pair (the caller closes both)."""
        return (
            HttpLedgerAPI(self.base_url, self.identity, timeout=self.timeout),
            HttpEscrowAPI(self.base_url, self.identity, timeout=self.timeout),
        )

    def publisher_payments(self) -> PublisherPayments:
        ledger, escrow = self.connections()
        return PublisherPayments(self.identity, ledger, escrow)

    def trainer_payments(self) -> TrainerPayments:
        """Stake by ICRC-2: approve the job's escrow account, then have the escrow collect."""
        ledger, escrow = self.connections()
        return TrainerPayments(ledger, escrow, "approve")

    def close(self) -> None:
        self.reader.close()


def close_payments(payments: PublisherPayments | TrainerPayments | None) -> None:
    """Close the connections of money objects made by :class:`EscrowLink`."""
    if payments is None:
        return
    for connection in (payments.ledger, payments.escrow):
        if isinstance(connection, HttpLedgerAPI | HttpEscrowAPI):
            connection.close()


@dataclass(frozen=True)
class EscrowPayment:
    """One payment out of a job's escrow."""

    block: int
    time_s: float
    kind: str
    to: Account
    amount: int

    @property
    def label(self) -> str:
        return PAYMENT_LABELS.get(self.kind, "payment")


@dataclass
class EscrowView:
    """A job's escrow as its page shows it."""

    job_id: str
    account: Account
    balance: int
    bound: bool  # terms registered
    funded: int
    stakes: dict[str, int]
    purchases: dict[str, int]  # buyer → block index
    rounds_recorded: int
    outcome: str | None
    payments: list[EscrowPayment] = field(default_factory=list)
    paid_to: dict[str, int] = field(default_factory=dict)  # principal → total received

    def payout_of(self, principal: str) -> int | None:
        """What the escrow paid ``principal`` (to its default account); None before any payment."""
        return self.paid_to.get(principal)


def escrow_payments(job_id: str, rows: list[BlockRow]) -> list[EscrowPayment]:
    """The payments in ``rows`` (blocks touching the escrow account) made by this job's escrow."""
    source, tag = escrow_account(job_id), job_tag(job_id)
    found: list[EscrowPayment] = []
    for row in rows:
        memo = row.escrow
        if memo is None or not memo.is_payment or memo.tag != tag:
            continue
        if row.from_ != source or row.to is None:
            continue
        found.append(EscrowPayment(row.index, row.time_s, memo.kind, row.to, row.amount))
    return sorted(found, key=lambda p: p.block)


def escrow_view(status: EscrowStatus, rows: list[BlockRow]) -> EscrowView:
    """What a job's page shows of its escrow (``rows``: blocks touching the escrow account)."""
    payments = escrow_payments(status.job_id, rows)
    paid_to: dict[str, int] = {}
    for payment in payments:
        if payment.to.effective_subaccount == bytes(32):
            who = payment.to.owner.to_text()
            paid_to[who] = paid_to.get(who, 0) + payment.amount
    return EscrowView(
        job_id=status.job_id,
        account=status.account,
        balance=status.balance,
        bound=status.terms is not None,
        funded=status.funded,
        stakes={p.to_text(): n for p, n in sorted(status.stakes.items(), key=_by_text)},
        purchases={p.to_text(): n for p, n in sorted(status.purchases.items(), key=_by_text)},
        rounds_recorded=status.rounds_recorded,
        outcome=status.ending.value if status.ending is not None else None,
        payments=payments,
        paid_to=paid_to,
    )


def _by_text(item: tuple[Principal, int]) -> str:
    return item[0].to_text()
