"""The escrow executor: makes the payments the escrow rules say, each exactly once.

It runs beside the embedded ledger, inside the ledger's boundary (as a canister runs beside the
ICP ledger and calls it), and holds the **only** handle that can debit escrow accounts
(``Ledger.claim_reserved_caller``; any other call as the escrow's principal is refused, and that
principal has no key). What it does is fixed by :mod:`califusion.ledger.escrow`; its inputs are
the publisher's signed statements, ledger blocks and the ledger's clock. There is no method to
send escrow funds anywhere else, so the coordinator's operator — who never holds this object in
the first place — has nothing to call.

**Exactly once.** A payment is identified by its memo (job, kind, batch, index) and carries a
deterministic ``created_at_time`` (the batch's anchor time + its index). :meth:`run_job` plans
every due batch again from recorded facts, skips the payments it has recorded, and sends the
rest one by one, recording each block index after the ledger accepted it. If the process dies
between the transfer and the record, the retry is the *same* transaction: within the ledger's
24 h deduplication window it is answered ``Duplicate{duplicate_of}``, which is recorded as the
payment. After the window (a payment first attempted more than ``tx_window − LATE_MARGIN`` after
its anchor) the ledger would answer ``TooOld``, so the executor first looks the memo up in the
block log (memos are unique per payment) and sends — with the current time — only if it is not
there. That lookup is race-free because this executor is the escrow's single writer (one per
ledger, serialized by a lock, like a canister); it is expected to finish a batch well inside the
window, and the late path only exists so that a long outage can never turn into a double payment.

``hook(point, payment)`` is called at ``before-transfer``, ``after-transfer`` (the ledger has
the block, nothing is recorded) and ``after-record``; the exactly-once test kills the process
there.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from califusion.core.errors import (
    CaliFusionError,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from califusion.crypto.principal import Account, Principal
from califusion.ledger.escrow import (
    Ending,
    EscrowState,
    Payment,
    Settlement,
    accept_statement,
    classify,
    is_expired,
    plan,
)
from califusion.ledger.escrow_ids import (
    ESCROW_PRINCIPAL,
    DepositKind,
    deposit_memo,
    escrow_account,
    escrow_subaccount,
)
from califusion.ledger.escrow_store import EscrowStatus, EscrowStore
from califusion.ledger.escrow_terms import (
    CloseStatement,
    EscrowTerms,
    RoundStatement,
    SignedStatement,
)
from califusion.ledger.service import Ledger
from califusion.ledger.types import (
    Duplicate,
    Err,
    InsufficientAllowance,
    InsufficientFunds,
    Ok,
    TooOld,
    TransferArg,
    TransferFromArgs,
)

log = logging.getLogger(__name__)

LATE_MARGIN_NS = 3600 * 1_000_000_000  # treat a payment as late an hour before the window ends
Hook = Callable[[str, Payment], None]


class EscrowPaymentError(CaliFusionError):
    """The ledger refused an escrow payment the rules require (a bug or a broken ledger)."""


class EscrowExecutor:
    """Registers terms and statements, collects stakes, and pays what the rules say."""

    def __init__(
        self, ledger: Ledger, *, store: EscrowStore | None = None, hook: Hook | None = None
    ) -> None:
        self._ledger = ledger
        self._escrow = ledger.claim_reserved_caller(ESCROW_PRINCIPAL)
        self._store = store if store is not None else EscrowStore(ledger.store.engine)
        self._hook = hook
        self._fee = ledger.icrc1_fee()
        self._window_ns = ledger.config.tx_window_ns
        self._lock = threading.RLock()

    @property
    def store(self) -> EscrowStore:
        return self._store

    def now_ns(self) -> int:
        return self._ledger.now_ns()

    # --- statements ---------------------------------------------------------------------------

    def register_terms(self, signed: SignedStatement) -> EscrowTerms:
        """Bind a job to the terms its publisher signed (idempotent; other terms: Conflict)."""
        terms = signed.verify()
        if not isinstance(terms, EscrowTerms):
            raise InvalidInput("expected signed escrow terms")
        if signed.signer != terms.publisher:
            raise PermissionDenied("escrow terms must be signed by the job's publisher")
        now = self.now_ns()
        if terms.deadline_ns <= now:
            raise InvalidInput("the terms' deadline has already passed")
        with self._lock:
            return self._store.add_terms(signed, terms, now)

    def submit_statement(self, signed: SignedStatement) -> EscrowStatus:
        """Record a publisher's round or close statement; settle if it ends the job."""
        statement = signed.verify()
        if isinstance(statement, EscrowTerms):
            self.register_terms(signed)
            return self.status(statement.job_id)
        job_id = statement.job_id
        with self._lock:
            state = self._state(job_id)
            if signed.signer != state.terms.publisher:
                raise PermissionDenied(f"statements about {job_id} must be signed by its publisher")
            after, ending = accept_statement(state, statement)
            if after is state and ending is None:
                return self.status(job_id)  # already recorded
            now = self.now_ns()
            if isinstance(statement, RoundStatement):
                self._store.add_statement(job_id, "round", statement.round, signed, now)
            else:
                assert isinstance(statement, CloseStatement)
                self._store.add_statement(job_id, "close", 0, signed, now)
            if ending is not None:
                self._settle(job_id, ending)
        return self.status(job_id)

    def _state(self, job_id: str) -> EscrowState:
        state = self._store.state(job_id)
        if state is None:
            raise NotFound(f"no escrow terms registered for {job_id}")
        return state

    def _settle(self, job_id: str, ending: Ending) -> Settlement:
        cutoff = self._ledger.icrc3_get_blocks(0, 0).log_length
        settlement = self._store.settle(job_id, Settlement(ending, cutoff, self.now_ns()))
        log.info("escrow settled", extra={"job_id": job_id, "ending": settlement.ending.value})
        return settlement

    # --- stakes -------------------------------------------------------------------------------

    def collect_stake(
        self, trainer: Principal, job_id: str, from_subaccount: bytes | None = None
    ) -> int:
        """Pull ``trainer``'s stake into the job's escrow with the allowance it gave the job's
        escrow account (ICRC-2); the stake's block index. A trainer staked already gets its
        existing stake's block back, not a second debit."""
        with self._lock:
            state = self._state(job_id)
            terms = state.terms
            if state.settlement is not None:
                raise Conflict(f"the escrow of {job_id} is settled; it takes no more stakes")
            if terms.stake == 0:
                raise InvalidInput(f"{job_id} asks for no stake")
            staked = classify(terms, self._store.deposits(job_id)).stakes.get(trainer)
            if staked is not None:
                return staked.block
            result = self._escrow.icrc2_transfer_from(
                TransferFromArgs(
                    from_=Account(trainer, from_subaccount),
                    to=escrow_account(job_id),
                    amount=terms.stake,
                    spender_subaccount=escrow_subaccount(job_id),
                    fee=self._fee,
                    memo=deposit_memo(job_id, DepositKind.STAKE),
                )
            )
        if isinstance(result, Ok):
            return result.block_index
        error = result.error
        if isinstance(error, InsufficientAllowance):
            raise Conflict(
                f"approve {terms.stake + self._fee} (stake + fee) for the job's escrow account "
                f"{escrow_account(job_id)} first; the allowance is {error.allowance}"
            )
        if isinstance(error, InsufficientFunds):
            raise Conflict(
                f"a stake of {terms.stake} plus the fee {self._fee} is required; the balance "
                f"is {error.balance}"
            )
        raise Conflict(f"the ledger refused the stake: {error}")

    # --- payments -----------------------------------------------------------------------------

    def status(self, job_id: str) -> EscrowStatus:
        return self._store.status(job_id)

    def run_job(self, job_id: str) -> list[Payment]:
        """Settle an expired job, then make every due payment not yet made; those made now."""
        with self._lock:
            state = self._store.state(job_id)
            if state is None:
                return []
            if is_expired(state, self.now_ns()):
                self._settle(job_id, Ending.EXPIRED)
                state = self._state(job_id)
            done = self._store.payments(job_id)
            made: list[Payment] = []
            for batch in plan(state, self._store.deposits(job_id), self._fee):
                for payment in batch.payments:
                    if payment.memo not in done:
                        self._pay(job_id, payment)
                        made.append(payment)
            return made

    def run_due(self) -> list[Payment]:
        """:meth:`run_job` for every job the escrow knows."""
        made: list[Payment] = []
        for job_id in self._store.job_ids():
            made.extend(self.run_job(job_id))
        return made

    def _call_hook(self, point: str, payment: Payment) -> None:
        if self._hook is not None:
            self._hook(point, payment)

    def _pay(self, job_id: str, payment: Payment) -> None:
        self._call_hook("before-transfer", payment)
        now = self.now_ns()
        created: int | None = payment.created_at_time
        if payment.created_at_time + self._window_ns - LATE_MARGIN_NS < now:
            created = self._late(job_id, payment, now)
            if created is None:
                return
        arg = TransferArg(
            to=payment.to,
            amount=payment.amount,
            from_subaccount=escrow_subaccount(job_id),
            fee=self._fee,
            memo=payment.memo,
            created_at_time=created,
        )
        result = self._escrow.icrc1_transfer(arg)
        if isinstance(result, Err) and isinstance(result.error, TooOld):
            late = self._late(job_id, payment, now)
            if late is None:
                return
            result = self._escrow.icrc1_transfer(
                TransferArg(
                    to=arg.to,
                    amount=arg.amount,
                    from_subaccount=arg.from_subaccount,
                    fee=arg.fee,
                    memo=arg.memo,
                    created_at_time=late,
                )
            )
        if isinstance(result, Ok):
            block = result.block_index
        elif isinstance(result.error, Duplicate):
            block = result.error.duplicate_of  # the crashed attempt's transfer: already paid
        else:
            raise EscrowPaymentError(
                f"the ledger refused escrow payment {payment.memo.hex()} of {payment.amount} "
                f"to {payment.to}: {result.error}"
            )
        self._call_hook("after-transfer", payment)
        self._store.record_payment(job_id, payment, block, self.now_ns())
        self._call_hook("after-record", payment)

    def _late(self, job_id: str, payment: Payment, now: int) -> int | None:
        """Outside the dedup window: record the payment if the log has it, else a fresh time."""
        found = self._store.find_payment_block(payment.memo)
        if found is None:
            return now
        self._store.record_payment(job_id, payment, found, now)
        self._call_hook("after-record", payment)
        return None


__all__ = ["EscrowExecutor", "EscrowPaymentError", "Hook"]
