"""The escrow rules: (signed statements, ledger deposits, time) → the payments to make.

Pure functions, no I/O: :class:`~califusion.ledger.escrow_executor.EscrowExecutor` feeds them
facts nobody but the ledger and the publisher's key can produce, and makes exactly the payments
they return. Every payment is a function of facts that never change once recorded (deposit
blocks, the publisher's statements, the settlement's cut-off), so planning again after a crash
yields the same payments with the same memos and ``created_at_time``.

**Deposits** into a job's escrow account are classified by memo (``escrow_ids``) and sender:
funding (``F`` from the publisher), a stake (the first ``S`` from a trainer of at least the
stake), a purchase (the first ``B`` from a buyer of at least the price, when the job sells
access); anything else — a second stake or purchase, a short one, an unknown memo — is a *stray*
and goes back to its sender. What a deposit is never depends on later deposits.

**Settlement** (batch 0) happens once, when the job ends: completed (the last round statement),
cancelled (before any round statement), failed (the publisher says so) or expired (the deadline
in the terms passed). It covers the deposits before its cut-off (the ledger length when it was
decided); later ones are refunded one by one. With ``R`` of ``N`` rounds proven:

- earned pool = ``min(funded, reward_pool) × R // N``; the publisher gets back the rest of
  what it funded (all of it if nothing was proven: cancelling before training refunds everyone);
- a stake is refunded if its trainer contributed to at least ``min_participation_bps`` of the
  proven rounds it took part in (admitted or contributed), or took part in none (it staked but
  was never admitted); otherwise it is **slashed into the reward** — added to the earned pool and
  split among the contributors. Slashing never pays the publisher, who signs the contributor
  lists and so must gain nothing from leaving a trainer out;
- the reward (earned pool + slashed stakes) is split ∝ weight: Σ verified samples over the
  proven rounds (``samples``, the default), rounds contributed (``rounds``) or one share each
  (``equal``). Integer shares are floored; **the remainder goes to the largest contributor**
  (ties: the lowest principal bytes), so rounding never returns anything to the publisher.

**A sale** (one batch per purchase, batch = the purchase's block index) waits for the
settlement: if the job completed, ``price × sale_publisher_bps // 10 000`` goes to the publisher
and the rest is split among contributors as the reward was; otherwise, and for a buyer's
second payment, the purchase is refunded. Overpayment is returned in the same batch.

**Fees**: each payment is one ledger transfer; its fee is paid out of what it carries, so the
escrow spends exactly what it holds. Everything owed to one account in a batch is one payment.
A payment worth no more than the fee is not sent (the "dust" stays in the escrow account).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from califusion.core.errors import Conflict, InvalidInput
from califusion.crypto.principal import Account, Principal
from califusion.ledger.escrow_ids import (
    DepositKind,
    PaymentKind,
    job_tag,
    parse_deposit_memo,
    payment_memo,
)
from califusion.ledger.escrow_terms import (
    BPS,
    CloseStatement,
    EscrowTerms,
    Outcome,
    RoundStatement,
    Weighting,
)

SETTLEMENT_BATCH = 0


class Ending(StrEnum):
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Deposit:
    """A ledger block that credited the escrow account (``sender`` None for a mint)."""

    block: int
    sender: Account | None
    amount: int
    memo: bytes | None
    ts: int


@dataclass(frozen=True, slots=True)
class Settlement:
    """How and when a job ended, fixed once: the facts the settlement batch is a function of."""

    ending: Ending
    cutoff: int  # deposits in blocks before this index belong to the settlement
    anchor_ns: int  # ledger time when decided: the created_at_time base of its payments


@dataclass(frozen=True, slots=True)
class EscrowState:
    terms: EscrowTerms
    rounds: tuple[RoundStatement, ...] = ()
    settlement: Settlement | None = None


@dataclass(frozen=True, slots=True)
class Book:
    """The deposits of one job, classified."""

    funding: tuple[Deposit, ...]
    stakes: dict[Principal, Deposit]
    purchases: dict[Principal, Deposit]
    unsold: tuple[Deposit, ...]  # buy memos that are not a purchase: refunded at once
    strays: tuple[Deposit, ...]  # anything else: refunded with (or after) the settlement

    @property
    def funded(self) -> int:
        return sum(d.amount for d in self.funding)


@dataclass(frozen=True, slots=True)
class Payment:
    kind: PaymentKind
    batch: int
    index: int
    to: Account
    gross: int  # what the rule assigns; ``amount`` = gross - fee is what the transfer carries
    amount: int
    memo: bytes
    created_at_time: int
    parts: tuple[tuple[str, int], ...]  # what the gross is made of, for people to read


@dataclass(frozen=True, slots=True)
class Batch:
    kind: PaymentKind
    batch: int
    payments: tuple[Payment, ...]
    dust: int  # owed amounts too small to pay: they stay in the escrow account


# --- statements -------------------------------------------------------------------------------


def accept_statement(
    state: EscrowState, statement: RoundStatement | CloseStatement
) -> tuple[EscrowState, Ending | None]:
    """Record a (verified) publisher statement; the ending it causes, if any."""
    terms = state.terms
    if statement.job_id != terms.job_id:
        raise InvalidInput(f"statement is for {statement.job_id}, not {terms.job_id}")
    if isinstance(statement, RoundStatement) and statement.round <= len(state.rounds):
        if state.rounds[statement.round - 1] == statement:
            return state, None  # a retry of a statement already recorded
        raise Conflict(f"round {statement.round} of {terms.job_id} is already recorded")
    if state.settlement is not None:
        raise Conflict(f"the escrow of {terms.job_id} is settled ({state.settlement.ending})")
    if isinstance(statement, CloseStatement):
        if statement.outcome is Outcome.CANCELLED and state.rounds:
            raise Conflict(
                f"{terms.job_id} has {len(state.rounds)} proven round(s): it can no longer be "
                "cancelled for a full refund; declare it failed to settle on those rounds"
            )
        return state, Ending(statement.outcome.value)
    if statement.round != len(state.rounds) + 1 or statement.round > terms.rounds:
        raise Conflict(
            f"expected round {len(state.rounds) + 1} of {terms.rounds}, got {statement.round}"
        )
    if terms.publisher in statement.participants:
        raise InvalidInput("the publisher cannot be a trainer of its own job")
    after = replace(state, rounds=(*state.rounds, statement))
    return after, Ending.COMPLETED if statement.round == terms.rounds else None


def is_expired(state: EscrowState, now_ns: int) -> bool:
    return state.settlement is None and now_ns >= state.terms.deadline_ns


# --- deposits ---------------------------------------------------------------------------------


def classify(terms: EscrowTerms, deposits: Iterable[Deposit]) -> Book:
    """Sort deposits (in block order) into funding, stakes, purchases and strays."""
    tag = job_tag(terms.job_id)
    funding: list[Deposit] = []
    stakes: dict[Principal, Deposit] = {}
    purchases: dict[Principal, Deposit] = {}
    unsold: list[Deposit] = []
    strays: list[Deposit] = []
    for deposit in sorted(deposits, key=lambda d: d.block):
        memo = parse_deposit_memo(deposit.memo)
        sender = deposit.sender.owner if deposit.sender is not None else None
        kind = memo.kind if memo is not None and memo.tag == tag else None
        if sender is None or kind is None:
            strays.append(deposit)
        elif kind == DepositKind.FUND and sender == terms.publisher:
            funding.append(deposit)
        elif (
            kind == DepositKind.STAKE
            and sender != terms.publisher
            and sender not in stakes
            and deposit.amount >= terms.stake
        ):
            stakes[sender] = deposit
        elif kind == DepositKind.BUY:
            first = terms.price is not None and sender not in purchases
            if first and deposit.amount >= (terms.price or 0):
                purchases[sender] = deposit
            else:
                unsold.append(deposit)
        else:
            strays.append(deposit)
    return Book(tuple(funding), stakes, purchases, tuple(unsold), tuple(strays))


def weights(terms: EscrowTerms, rounds: Sequence[RoundStatement]) -> dict[Principal, int]:
    """Each contributor's weight over the proven rounds, by the terms' weighting."""
    result: dict[Principal, int] = defaultdict(int)
    for statement in rounds:
        for trainer, samples in statement.contributions:
            if terms.weighting is Weighting.SAMPLES:
                result[trainer] += samples
            elif terms.weighting is Weighting.ROUNDS:
                result[trainer] += 1
            else:
                result[trainer] = 1
    return dict(result)


def split(amount: int, by_weight: dict[Principal, int]) -> dict[Principal, int]:
    """``amount`` ∝ weight, floored; the remainder to the largest weight (lowest bytes on ties)."""
    total = sum(by_weight.values())
    if amount == 0 or total == 0:
        return {}
    shares = {p: amount * w // total for p, w in by_weight.items()}
    largest = min(by_weight, key=lambda p: (-by_weight[p], p.raw))
    shares[largest] += amount - sum(shares.values())
    return shares


def keeps_stake(trainer: Principal, terms: EscrowTerms, rounds: Sequence[RoundStatement]) -> bool:
    """The participation rule: refunded unless it skipped too many of the rounds it was in."""
    expected = sum(1 for r in rounds if trainer in r.participants)
    contributed = sum(1 for r in rounds if any(t == trainer for t, _ in r.contributions))
    return expected == 0 or contributed * BPS >= terms.min_participation_bps * expected


# --- planning ---------------------------------------------------------------------------------


class _Owed:
    """What a batch owes, per account, with the reason for each part."""

    def __init__(self) -> None:
        self.parts: dict[Account, list[tuple[str, int]]] = defaultdict(list)

    def add(self, to: Account, label: str, amount: int) -> None:
        if amount > 0:
            self.parts[to].append((label, amount))

    def batch(self, job_id: str, kind: PaymentKind, batch: int, anchor_ns: int, fee: int) -> Batch:
        payments: list[Payment] = []
        dust = 0
        ordered = sorted(
            self.parts.items(), key=lambda kv: (kv[0].owner.raw, kv[0].subaccount or b"")
        )
        for to, parts in ordered:
            gross = sum(amount for _, amount in parts)
            if gross <= fee:
                dust += gross
                continue
            index = len(payments)
            payments.append(
                Payment(
                    kind=kind,
                    batch=batch,
                    index=index,
                    to=to,
                    gross=gross,
                    amount=gross - fee,
                    memo=payment_memo(job_id, kind, batch, index),
                    created_at_time=anchor_ns + index,
                    parts=tuple(parts),
                )
            )
        return Batch(kind, batch, tuple(payments), dust)


def _settlement(state: EscrowState, book: Book, fee: int) -> Batch:
    terms, rounds, settlement = state.terms, state.rounds, state.settlement
    assert settlement is not None
    owed = _Owed()
    publisher = Account(terms.publisher)
    earned = min(book.funded, terms.reward_pool) * len(rounds) // terms.rounds
    owed.add(publisher, "unearned pool refund", book.funded - earned)
    slashed = 0
    for trainer, deposit in sorted(book.stakes.items(), key=lambda kv: kv[1].block):
        assert deposit.sender is not None
        if keeps_stake(trainer, terms, rounds):
            owed.add(deposit.sender, "stake refund", deposit.amount)
        else:
            slashed += terms.stake
            owed.add(deposit.sender, "stake excess refund", deposit.amount - terms.stake)
    reward = split(earned + slashed, weights(terms, rounds))
    if not reward:  # nothing proven: nothing can have been slashed either
        owed.add(publisher, "unearned pool refund", earned + slashed)
    for trainer, amount in reward.items():
        owed.add(Account(trainer), "reward", amount)
    for stray in book.strays:
        if stray.sender is not None:
            owed.add(stray.sender, "stray deposit refund", stray.amount)
    return owed.batch(terms.job_id, PaymentKind.PAYOUT, SETTLEMENT_BATCH, settlement.anchor_ns, fee)


def _refund(job_id: str, deposit: Deposit, fee: int, label: str) -> Batch:
    owed = _Owed()
    if deposit.sender is not None:
        owed.add(deposit.sender, label, deposit.amount)
    return owed.batch(job_id, PaymentKind.REFUND, deposit.block, deposit.ts, fee)


def _sale(state: EscrowState, purchase: Deposit, fee: int) -> Batch:
    terms = state.terms
    assert terms.price is not None and purchase.sender is not None
    owed = _Owed()
    publisher_part = terms.price * terms.sale_publisher_bps // BPS
    shares = split(terms.price - publisher_part, weights(terms, state.rounds))
    if not shares:
        publisher_part = terms.price
    owed.add(Account(terms.publisher), "sale: publisher share", publisher_part)
    for trainer, amount in shares.items():
        owed.add(Account(trainer), "sale: trainer share", amount)
    owed.add(purchase.sender, "overpayment refund", purchase.amount - terms.price)
    return owed.batch(terms.job_id, PaymentKind.SALE, purchase.block, purchase.ts, fee)


def plan(state: EscrowState, deposits: Sequence[Deposit], fee: int) -> list[Batch]:
    """Every batch that is due now, in a fixed order; the executor skips those already paid."""
    terms, settlement = state.terms, state.settlement
    job_id = terms.job_id
    book = classify(terms, deposits)
    batches: list[Batch] = []
    if settlement is not None:
        before = [d for d in deposits if d.block < settlement.cutoff]
        batches.append(_settlement(state, classify(terms, before), fee))
    bought = {d.block for d in book.purchases.values()}
    unsold = {d.block for d in book.unsold}
    for deposit in sorted(deposits, key=lambda d: d.block):
        if deposit.block in bought:
            if settlement is None:
                continue  # a sale waits for the job's outcome
            if settlement.ending is Ending.COMPLETED:
                batches.append(_sale(state, deposit, fee))
            else:
                batches.append(_refund(job_id, deposit, fee, "unsold: job did not complete"))
        elif deposit.block in unsold:
            batches.append(_refund(job_id, deposit, fee, "duplicate or short purchase refund"))
        elif settlement is not None and deposit.block >= settlement.cutoff:
            batches.append(_refund(job_id, deposit, fee, "deposit after settlement refund"))
    return batches
