"""The buyer's agent: pay a job's price into its escrow, then fetch and open the model.

Paying is a plain ICRC-1 transfer of the price to the job's escrow account with the job's buy
memo; before it pays, the agent checks that the escrow is bound to the terms the job's spec
shows and that this buyer has not paid already (a second payment would be refunded, minus the
ledger fee). Once the publisher's agent has seen the payment on the ledger it wraps the model
key to this buyer's agreement key; :meth:`BuyerAgent.model` unwraps it, fetches the sealed model
and decrypts it. Nobody else can: not the coordinator, not another buyer.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

from califusion.agent.client import CoordinatorClient
from califusion.agent.payments import check_escrow
from califusion.agent.payments_sales import model_key_context, model_sale_context
from califusion.core.errors import Conflict, InvalidInput
from califusion.crypto import envelope, symmetric
from califusion.crypto.encoding import b64d
from califusion.ledger.api import LedgerAPI
from califusion.ledger.escrow_api import EscrowReader
from califusion.ledger.escrow_ids import DepositKind, deposit_memo, escrow_account
from califusion.ledger.types import Err, TransferArg
from califusion.ml import Weights, from_safetensors
from califusion.protocol import JobInfo, JobState


@dataclass
class BuyerAgent:
    client: CoordinatorClient
    ledger: LedgerAPI | None = None  # needed to pay; fetching the model needs only the client
    escrow: EscrowReader | None = None

    def buy(self, job_id: str) -> int:
        """Pay the model's price into the job's escrow; the payment's block index."""
        if self.ledger is None:
            raise InvalidInput("paying needs a ledger connection")
        with contextlib.suppress(Conflict):  # registered already
            self.client.register("buyer")  # the publisher wraps the key to our agreement key
        job, price = self.check(job_id)
        me = self.ledger.caller
        if self.escrow is not None:
            status = check_escrow(job, self.escrow.status(job_id))
            if status.has_paid(me):
                return status.purchases[me]  # paid already: paying again would be refunded
        result = self.ledger.icrc1_transfer(
            TransferArg(
                to=escrow_account(job_id),
                amount=price,
                memo=deposit_memo(job_id, DepositKind.BUY),
            )
        )
        if isinstance(result, Err):
            raise Conflict(f"the ledger refused the payment for {job_id}: {result.error}")
        return result.block_index

    def check(self, job_id: str) -> tuple[JobInfo, int]:
        """The job and its price, if its model is on sale (a completed job with a price)."""
        job = self.client.job(job_id)
        price = job.spec.price
        if price is None:
            raise InvalidInput(f"{job_id} sets no price: its model is not for sale")
        if job.state != JobState.COMPLETED:
            raise Conflict(f"{job_id} is {job.state.value}: only a completed job's model sells")
        return job, price

    def model_bytes(self, job_id: str) -> bytes:
        """The model on offer as safetensors bytes (PermissionDenied until the key is granted)."""
        access = self.client.access_key(job_id)
        me = self.client.identity.principal.to_text()
        key = envelope.unwrap_key(
            b64d(access.wrapped_key), self.client.identity, model_key_context(job_id, me)
        )
        return symmetric.decrypt(
            key, self.client.get_blob(access.model), model_sale_context(job_id)
        )

    def model(self, job_id: str) -> Weights:
        """The model on offer, decrypted and checked against the job's model spec."""
        job = self.client.job(job_id)
        weights, _ = from_safetensors(self.model_bytes(job_id), job.spec.model)
        return weights
