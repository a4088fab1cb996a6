"""The buyer side of the local agent: pay for a completed job's model, then download it.

Paying is :meth:`~califusion.agent.buyer.BuyerAgent.buy`: a plain ICRC-1 transfer of the price
into the job's escrow account with the job's buy memo, after checking that the escrow is bound
to the terms the job shows and that this user has not paid already. One purchase per job runs at
a time here (a lock per job), and the escrow's record of who paid is asked before every payment,
so a double click, two tabs or a reload cannot pay twice. The publisher's agent then sees the
payment on the ledger and wraps the model key to this user; until it has, the coordinator
answers PermissionDenied and the page keeps polling. The key is unwrapped and the model decrypted
here, in this process: the browser receives the plain weights from its own local agent only.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass

from califusion.agent.buyer import BuyerAgent
from califusion.agent.client import CoordinatorClient
from califusion.agent.payments import require_balance
from califusion.core.errors import InvalidInput, NotFound, PermissionDenied
from califusion.ml import from_safetensors
from califusion.protocol import JobInfo, JobState
from califusion.web.escrow import EscrowLink

__all__ = ["BuyerDesk", "Purchase"]


@dataclass(frozen=True)
class Purchase:
    """Where this user stands with one job's model."""

    for_sale: bool  # completed, with a price, and an escrow to pay into
    paid_block: int | None  # the purchase's block on the ledger, once paid
    offered: bool  # the publisher's agent has put the sealed model up
    granted: bool  # the model key is wrapped to this user: the model can be downloaded

    @property
    def paid(self) -> bool:
        return self.paid_block is not None


class BuyerDesk:
    """Buy access to a model and fetch it, as this dashboard's user."""

    def __init__(self, client: CoordinatorClient, escrow: EscrowLink) -> None:
        self.client = client
        self.escrow = escrow
        self._lock = threading.Lock()
        self._job_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)

    @property
    def me(self) -> str:
        return self.client.identity.principal.to_text()

    def _job_lock(self, job_id: str) -> threading.Lock:
        with self._lock:
            return self._job_locks[job_id]

    @staticmethod
    def on_sale(job: JobInfo) -> bool:
        return job.state == JobState.COMPLETED and job.spec.price is not None

    def purchase(self, job: JobInfo) -> Purchase:
        """This user's purchase of ``job``'s model, as the escrow and the coordinator show it."""
        if not self.on_sale(job) or not self.escrow.served():
            return Purchase(for_sale=False, paid_block=None, offered=False, granted=False)
        status = self.escrow.status(job.job_id)
        block = status.purchases.get(self.client.identity.principal)
        try:
            self.client.access_key(job.job_id)
            return Purchase(True, block, offered=True, granted=True)
        except NotFound:  # no offer yet
            return Purchase(True, block, offered=False, granted=False)
        except PermissionDenied:  # on offer, but no key wrapped to us (yet)
            return Purchase(True, block, offered=True, granted=False)

    def buy(self, job_id: str) -> int:
        """Pay the price into the job's escrow (once); the purchase's block index."""
        if not self.escrow.served():
            raise InvalidInput(
                "the ledger serves no escrow: there is nowhere to pay for this model"
            )
        with self._job_lock(job_id):
            ledger, escrow = self.escrow.connections()
            agent = BuyerAgent(self.client, ledger, escrow)
            try:
                job, price = agent.check(job_id)
                status = escrow.status(job_id)
                paid = status.purchases.get(self.client.identity.principal)
                if paid is not None:
                    return paid  # paid already: a second payment would only be refunded
                require_balance(ledger, price, f"buying the model of {job.job_id}", 1)
                return agent.buy(job_id)
            finally:
                ledger.close()
                escrow.close()

    def model_bytes(self, job: JobInfo) -> bytes:
        """The bought model as safetensors bytes, decrypted here and checked against the job's
        model spec (PermissionDenied until the publisher's agent has granted the key)."""
        data = BuyerAgent(self.client).model_bytes(job.job_id)
        from_safetensors(data, job.spec.model)  # refuse weights that do not fit the spec
        return data
