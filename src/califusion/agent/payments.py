"""The agents' side of the escrow: funding, stakes, and the publisher's signed statements.

Each agent talks to the ledger through :class:`~califusion.ledger.api.LedgerAPI` (as itself)
and to the escrow through :class:`~califusion.ledger.escrow_api.EscrowAPI`; neither goes through
the coordinator, which is trusted with no money and no facts about money.

- The **publisher** signs the escrow terms (from the public spec), checks that those are the
  terms the escrow binds to the job — if someone registered others first it refuses to fund —
  and transfers the reward pool with the funding memo before it opens the job. After
  aggregating each round it signs who contributed and with how many verified samples, and sends
  that to the escrow *before* it publishes the result, so a trainer never has to train round
  ``n + 1`` before round ``n`` is provable (:meth:`PublisherPayments.settle_up` records rounds
  another aggregation path closed). When the job ends without completing it signs a close
  statement (cancelled before any round, else failed).
- A **trainer** checks, before it stakes, that the escrow's terms match the spec it was shown
  and that the pool is funded; it stakes by ICRC-2 (approve the job's escrow account, then ask
  the escrow to collect) or by a plain transfer with the stake memo; and it trains round ``n``
  only once the escrow holds the statement of round ``n - 1`` (:meth:`TrainerPayments.may_train`),
  so a publisher who withholds statements can take at most one round of unpaid work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from califusion.core.clock import Clock, SystemClock
from califusion.core.errors import Conflict
from califusion.crypto.identity import Identity
from califusion.crypto.principal import Account, Principal
from califusion.ledger.api import LedgerAPI
from califusion.ledger.escrow_api import EscrowAPI
from califusion.ledger.escrow_ids import DepositKind, deposit_memo, escrow_account
from califusion.ledger.escrow_store import EscrowStatus
from califusion.ledger.escrow_terms import (
    CloseStatement,
    EscrowTerms,
    Outcome,
    RoundStatement,
    Weighting,
    sign_statement,
    terms_differences,
)
from califusion.ledger.service import seconds_to_ns
from califusion.ledger.types import ApproveArgs, Err, TransferArg
from califusion.protocol import JobInfo, JobState, MemberState, RoundInfo, RoundState
from califusion.protocol.payout import escrow_fields, format_tokens, to_bps

log = logging.getLogger(__name__)

NS_PER_DAY = 24 * 3600 * 1_000_000_000


def escrow_terms_for(job: JobInfo, now_ns: int) -> EscrowTerms:
    """The terms a job's publisher signs: its spec's money rules, settling by the deadline."""
    spec, payout = job.spec, job.spec.payout
    return EscrowTerms(
        job_id=job.job_id,
        publisher=Principal.from_text(job.publisher),
        reward_pool=spec.reward_pool,
        stake=spec.stake,
        price=spec.price,
        rounds=spec.rounds,
        deadline_ns=now_ns + int(payout.settle_within_days * NS_PER_DAY),
        weighting=Weighting(payout.weighting),
        min_participation_bps=to_bps(payout.min_participation),
        sale_publisher_bps=to_bps(payout.sale_publisher_share),
    )


def check_escrow(job: JobInfo, status: EscrowStatus) -> EscrowStatus:
    """Raise unless the escrow binds ``job`` to the terms its spec shows, and is funded."""
    if status.terms is None:
        raise Conflict(f"{job.job_id} has no escrow terms yet: its publisher has not funded it")
    wrong = terms_differences(status.terms, escrow_fields(job.spec, job.publisher))
    if wrong:
        raise Conflict(
            f"the escrow of {job.job_id} is bound to other terms than its spec shows "
            f"({', '.join(wrong)}): do not pay into it",
            fields=wrong,
        )
    if status.funded < job.spec.reward_pool:
        raise Conflict(
            f"the reward pool of {job.job_id} is not in escrow: "
            f"{format_tokens(status.funded)} of {format_tokens(job.spec.reward_pool)}"
        )
    return status


def require_balance(ledger: LedgerAPI, amount: int, what: str, fees: int) -> int:
    """Raise unless the caller's account holds ``amount`` plus ``fees`` ledger fees; the
    balance otherwise."""
    fee = ledger.icrc1_fee()
    balance = ledger.icrc1_balance_of(Account(ledger.caller))
    needed = amount + fees * fee
    if balance < needed:
        raise Conflict(
            f"{what} needs {format_tokens(needed)} ({format_tokens(amount)} plus "
            f"{fees} ledger fee{'s' if fees > 1 else ''} of {format_tokens(fee)}); the balance "
            f"of {ledger.caller} is {format_tokens(balance)}"
        )
    return balance


def _ok(result: object, doing: str) -> None:
    if isinstance(result, Err):
        raise Conflict(f"the ledger refused to {doing}: {result.error}")


@dataclass
class PublisherPayments:
    """What the publisher's agent does with money; plugged into ``PublisherAgent.payments``."""

    identity: Identity
    ledger: LedgerAPI
    escrow: EscrowAPI
    clock: Clock = field(default_factory=SystemClock)

    def fund(self, job: JobInfo) -> EscrowStatus:
        """Register the signed terms (or check the registered ones) and fund the reward pool.

        A publisher whose balance cannot cover the pool is refused before anything is signed,
        with its balance and the amount needed."""
        status = self.escrow.status(job.job_id)
        missing = job.spec.reward_pool - status.funded
        if missing > 0:
            require_balance(self.ledger, missing, f"funding the reward pool of {job.job_id}", 1)
        if status.terms is None:
            terms = escrow_terms_for(job, seconds_to_ns(self.clock.now()))
            self.escrow.register_terms(sign_statement(self.identity, terms))
            status = self.escrow.status(job.job_id)
        assert status.terms is not None
        wrong = terms_differences(status.terms, escrow_fields(job.spec, job.publisher))
        if wrong:
            raise Conflict(
                f"the escrow of {job.job_id} is bound to other terms ({', '.join(wrong)}); "
                "not funding it"
            )
        missing = job.spec.reward_pool - status.funded
        if missing > 0:
            result = self.ledger.icrc1_transfer(
                TransferArg(
                    to=escrow_account(job.job_id),
                    amount=missing,
                    memo=deposit_memo(job.job_id, DepositKind.FUND),
                    created_at_time=seconds_to_ns(self.clock.now()),
                )
            )
            _ok(result, f"fund {job.job_id}")
            status = self.escrow.status(job.job_id)
        return status

    def round_closed(self, job: JobInfo, number: int, contributions: Mapping[str, int]) -> None:
        """Sign and record round ``number``: who contributed, with how many verified samples."""
        admitted = [m.trainer for m in job.members if m.state == MemberState.ADMITTED]
        statement = RoundStatement(
            job_id=job.job_id,
            round=number,
            admitted=tuple(Principal.from_text(t) for t in admitted),
            contributions=tuple(
                (Principal.from_text(t), n) for t, n in sorted(contributions.items())
            ),
        )
        try:
            self.escrow.submit_statement(sign_statement(self.identity, statement))
        except Conflict as exc:  # e.g. this round was recorded before a retried publish
            log.warning("round statement not recorded", extra={"round": number, "why": str(exc)})

    def settle_up(self, job: JobInfo, rounds: Callable[[], list[RoundInfo]]) -> None:
        """Bring the escrow up to date with the job: record closed rounds it lacks, and close it
        if the job ended without completing (completion is the last round's statement).

        A round the aggregation path did not record itself (secure aggregation sums masked
        updates, so no per-trainer count is verified there) is recorded with the contributors
        the coordinator lists and the samples they declared.
        """
        status = self.escrow.status(job.job_id)
        if status.terms is None or status.ending is not None:
            return
        if status.rounds_recorded < job.rounds_completed:
            declared = {m.trainer: m.declared_samples for m in job.members}
            closed = sorted(
                (r for r in rounds() if r.state == RoundState.CLOSED), key=lambda r: r.number
            )
            for rnd in closed[status.rounds_recorded : job.rounds_completed]:
                samples = {t: declared.get(t, 1) for t in rnd.contributors}
                self.round_closed(job, rnd.number, samples)
            status = self.escrow.status(job.job_id)
        if job.state not in {JobState.CANCELLED, JobState.FAILED} or status.ending is not None:
            return
        outcome = Outcome.CANCELLED if status.rounds_recorded == 0 else Outcome.FAILED
        statement = CloseStatement(job_id=job.job_id, outcome=outcome)
        self.escrow.submit_statement(sign_statement(self.identity, statement))


@dataclass
class TrainerPayments:
    """What a trainer's agent does with money: check the escrow, stake, wait for statements."""

    ledger: LedgerAPI
    escrow: EscrowAPI
    method: Literal["approve", "transfer"] = "approve"

    def stake(self, job: JobInfo) -> EscrowStatus:
        """Put this trainer's stake into the job's escrow (once) after checking the escrow."""
        status = check_escrow(job, self.escrow.status(job.job_id))
        stake = job.spec.stake
        if stake == 0 or status.stake_of(self.ledger.caller) >= stake:
            return status
        account = escrow_account(job.job_id)
        fees = 2 if self.method == "approve" else 1  # approve + collect, or one transfer
        require_balance(self.ledger, stake, f"the stake for {job.job_id}", fees)
        if self.method == "approve":
            fee = self.ledger.icrc1_fee()
            approved = self.ledger.icrc2_approve(ApproveArgs(spender=account, amount=stake + fee))
            _ok(approved, f"approve the stake for {job.job_id}")
            self.escrow.collect_stake(job.job_id)
        else:
            memo = deposit_memo(job.job_id, DepositKind.STAKE)
            sent = self.ledger.icrc1_transfer(TransferArg(to=account, amount=stake, memo=memo))
            _ok(sent, f"stake for {job.job_id}")
        return self.escrow.status(job.job_id)

    def may_train(self, job: JobInfo, rnd: RoundInfo) -> bool:
        """Only once the escrow can prove every earlier round (see the module docstring)."""
        if job.spec.reward_pool == 0 and job.spec.stake == 0:
            return True
        return self.escrow.status(job.job_id).rounds_recorded >= rnd.number - 1
