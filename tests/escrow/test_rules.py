"""The escrow rules as pure functions: classification, the payout rule, sales, refunds."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from califusion.core.errors import Conflict, InvalidInput
from califusion.crypto.principal import Account, Principal
from califusion.ledger.escrow import (
    Deposit,
    Ending,
    EscrowState,
    Settlement,
    accept_statement,
    classify,
    is_expired,
    plan,
    split,
)
from califusion.ledger.escrow_ids import DepositKind, PaymentKind, deposit_memo
from califusion.ledger.escrow_terms import CloseStatement, Outcome, Weighting

from .helpers import (
    BUYER,
    CFT,
    DAY_NS,
    FEE,
    JOB,
    NS,
    PUBLISHER,
    START,
    TRAINERS,
    round_statement,
    terms,
)

T0, T1, T2 = (t.principal for t in TRAINERS)
P = PUBLISHER.principal
ANCHOR = int(START) * NS


def dep(block: int, who: Principal | None, amount: int, kind: DepositKind | None) -> Deposit:
    memo = deposit_memo(JOB, kind) if kind is not None else None
    return Deposit(block, Account(who) if who else None, amount, memo, ANCHOR + block)


def standard_deposits() -> list[Deposit]:
    return [
        dep(10, P, 10 * CFT, DepositKind.FUND),
        dep(11, T0, CFT // 10, DepositKind.STAKE),
        dep(12, T1, CFT // 10, DepositKind.STAKE),
        dep(13, T2, CFT // 10, DepositKind.STAKE),
    ]


def settled(state: EscrowState, ending: Ending, cutoff: int = 100) -> EscrowState:
    return EscrowState(state.terms, state.rounds, Settlement(ending, cutoff, ANCHOR))


def gross_by_owner(batches: list) -> dict[Principal, int]:  # type: ignore[type-arg]
    totals: dict[Principal, int] = {}
    for batch in batches:
        for payment in batch.payments:
            totals[payment.to.owner] = totals.get(payment.to.owner, 0) + payment.gross
    return totals


def completed(rounds: list[dict[int, int]], **kwargs: object) -> EscrowState:
    state = EscrowState(terms(rounds=len(rounds), **kwargs))  # type: ignore[arg-type]
    for number, contributions in enumerate(rounds, start=1):
        by_identity = {TRAINERS[i]: n for i, n in contributions.items()}
        state, _ = accept_statement(state, round_statement(number, by_identity))
    return settled(state, Ending.COMPLETED)


def test_reward_is_split_by_verified_samples_over_rounds_and_stakes_refunded() -> None:
    state = completed([{0: 100, 1: 300, 2: 100}, {0: 100, 1: 300, 2: 100}])
    [batch] = plan(state, standard_deposits(), FEE)
    assert batch.kind is PaymentKind.PAYOUT and batch.batch == 0
    owed = gross_by_owner([batch])
    assert owed[T0] == 2 * CFT + CFT // 10
    assert owed[T1] == 6 * CFT + CFT // 10
    assert owed[T2] == 2 * CFT + CFT // 10
    assert P not in owed  # the whole pool was earned
    for payment in batch.payments:
        assert payment.amount == payment.gross - FEE
        assert len(payment.memo) == 32
        assert payment.created_at_time == ANCHOR + payment.index


@pytest.mark.parametrize(
    ("weighting", "expected"),
    [
        (Weighting.SAMPLES, {0: 25 * CFT // 10, 1: 75 * CFT // 10}),  # 100+100 vs 300+300
        (Weighting.ROUNDS, {0: 5 * CFT, 1: 5 * CFT}),
        (Weighting.EQUAL, {0: 5 * CFT, 1: 5 * CFT}),
    ],
)
def test_weighting_modes(weighting: Weighting, expected: dict[int, int]) -> None:
    state = completed([{0: 100, 1: 300}, {0: 100, 1: 300}], weighting=weighting, stake=0)
    owed = gross_by_owner(plan(state, standard_deposits()[:1], FEE))
    assert owed == {TRAINERS[i].principal: amount for i, amount in expected.items()}


def test_remainder_goes_to_the_largest_contributor_lowest_bytes_on_ties() -> None:
    a, b, c = Principal(b"\x01"), Principal(b"\x02"), Principal(b"\x03")
    assert split(100, {a: 1, b: 1, c: 1}) == {a: 34, b: 33, c: 33}
    assert split(100, {a: 1, b: 2, c: 2}) == {a: 20, b: 40, c: 40}
    assert split(101, {a: 1, b: 2, c: 2}) == {a: 20, b: 41, c: 40}
    assert split(0, {a: 1}) == {} and split(5, {}) == {}


def test_a_trainer_below_the_participation_rule_is_slashed_into_the_reward() -> None:
    # T2 was admitted in both rounds and contributed to none: its stake goes to the others.
    state = completed([{0: 100, 1: 100}, {0: 100, 1: 100}])
    owed = gross_by_owner(plan(state, standard_deposits(), FEE))
    assert T2 not in owed
    assert owed[T0] == owed[T1] == 5 * CFT + CFT // 20 + CFT // 10
    assert P not in owed  # slashing never pays the publisher


def test_participation_counts_only_rounds_a_trainer_was_in() -> None:
    # T2 joined late (admitted in round 2 only) and contributed to round 2: it keeps its stake.
    state = EscrowState(terms(rounds=2))
    state, _ = accept_statement(state, round_statement(1, {TRAINERS[0]: 50}, admitted=TRAINERS[:2]))
    state, _ = accept_statement(state, round_statement(2, {TRAINERS[0]: 50, TRAINERS[2]: 50}))
    owed = gross_by_owner(plan(settled(state, Ending.COMPLETED), standard_deposits(), FEE))
    # T2: its stake back, and a third of the pool plus T1's slashed stake (admitted, never came)
    assert owed[T2] == CFT // 10 + (10 * CFT + CFT // 10) * 50 // 150
    assert T1 not in owed


def test_cancelling_before_training_refunds_everyone() -> None:
    state = EscrowState(terms())
    state, ending = accept_statement(state, CloseStatement(JOB, Outcome.CANCELLED))
    assert ending is Ending.CANCELLED
    owed = gross_by_owner(plan(settled(state, Ending.CANCELLED), standard_deposits(), FEE))
    assert owed == {P: 10 * CFT, T0: CFT // 10, T1: CFT // 10, T2: CFT // 10}


def test_after_a_proven_round_cancel_is_refused_and_failure_pays_the_proven_rounds() -> None:
    state = EscrowState(terms(rounds=4))
    state, _ = accept_statement(state, round_statement(1, {TRAINERS[0]: 10, TRAINERS[1]: 30}))
    with pytest.raises(Conflict, match="no longer be cancelled"):
        accept_statement(state, CloseStatement(JOB, Outcome.CANCELLED))
    state, ending = accept_statement(state, CloseStatement(JOB, Outcome.FAILED))
    assert ending is Ending.FAILED
    owed = gross_by_owner(plan(settled(state, Ending.FAILED), standard_deposits(), FEE))
    quarter = 10 * CFT // 4
    assert owed[P] == 10 * CFT - quarter  # the unearned three quarters
    assert owed[T0] == quarter // 4 + CFT // 10 + (CFT // 10) // 4  # + T2's slashed stake
    assert sum(owed.values()) == 10 * CFT + 3 * CFT // 10


def test_statements_must_come_in_order_from_round_one_and_stop_at_the_end() -> None:
    state = EscrowState(terms(rounds=1))
    with pytest.raises(Conflict, match="expected round 1"):
        accept_statement(state, round_statement(2, {TRAINERS[0]: 1}))
    done, ending = accept_statement(state, round_statement(1, {TRAINERS[0]: 1}))
    assert ending is Ending.COMPLETED
    again, none = accept_statement(done, round_statement(1, {TRAINERS[0]: 1}))
    assert again is done and none is None  # a retry is harmless
    with pytest.raises(Conflict, match="already recorded"):
        accept_statement(done, round_statement(1, {TRAINERS[0]: 2}))
    with pytest.raises(InvalidInput, match="publisher"):
        accept_statement(state, round_statement(1, {PUBLISHER: 1}))


def test_expiry() -> None:
    state = EscrowState(terms(deadline_ns=ANCHOR + DAY_NS))
    assert not is_expired(state, ANCHOR + DAY_NS - 1)
    assert is_expired(state, ANCHOR + DAY_NS)
    assert not is_expired(settled(state, Ending.CANCELLED), ANCHOR + 2 * DAY_NS)


def test_deposits_are_classified_by_memo_sender_and_order() -> None:
    other_job = Deposit(
        20, Account(T0), CFT, deposit_memo("job-" + "cd" * 16, DepositKind.STAKE), 0
    )
    deposits = [
        *standard_deposits(),
        dep(14, T0, CFT // 10, DepositKind.STAKE),  # second stake: stray
        dep(15, T1, CFT // 10 - 1, DepositKind.STAKE),  # n/a: T1 has staked; stray
        dep(16, P, CFT, DepositKind.STAKE),  # the publisher cannot stake: stray
        dep(17, T0, CFT, DepositKind.FUND),  # only the publisher funds: stray
        dep(18, T2, 5, None),  # no memo: stray
        dep(19, None, 7, DepositKind.FUND),  # a mint into the escrow: cannot be sent back
        other_job,
        dep(21, BUYER.principal, 2 * CFT, DepositKind.BUY),
        dep(22, BUYER.principal, 2 * CFT, DepositKind.BUY),  # paid twice
        dep(23, T0, CFT, DepositKind.BUY),  # short of the price
    ]
    book = classify(terms(), deposits)
    assert book.funded == 10 * CFT
    assert {p: d.block for p, d in book.stakes.items()} == {T0: 11, T1: 12, T2: 13}
    assert {p: d.block for p, d in book.purchases.items()} == {BUYER.principal: 21}
    assert [d.block for d in book.unsold] == [22, 23]
    assert [d.block for d in book.strays] == [14, 15, 16, 17, 18, 19, 20]


def test_purchases_wait_for_the_outcome_then_sell_or_are_refunded() -> None:
    deposits = [
        *standard_deposits(),
        dep(30, BUYER.principal, 2 * CFT + 5, DepositKind.BUY),
        dep(31, BUYER.principal, 2 * CFT, DepositKind.BUY),
    ]
    training = EscrowState(terms(rounds=1))
    waiting = plan(training, deposits, FEE)
    assert [(b.kind, b.batch) for b in waiting] == [(PaymentKind.REFUND, 31)]  # second at once

    sold = completed([{0: 100, 1: 300}])
    batches = plan(sold, deposits, FEE)
    assert [(b.kind, b.batch) for b in batches] == [
        (PaymentKind.PAYOUT, 0),
        (PaymentKind.SALE, 30),
        (PaymentKind.REFUND, 31),
    ]
    sale = gross_by_owner([batches[1]])
    assert sale == {P: CFT, T0: CFT // 4, T1: 3 * CFT // 4}
    assert batches[1].dust == 5  # the 5 units of overpayment are worth less than the fee

    failed = settled(EscrowState(terms(rounds=1)), Ending.FAILED)
    unsold = plan(failed, deposits, FEE)
    assert [(b.kind, b.batch) for b in unsold] == [
        (PaymentKind.PAYOUT, 0),
        (PaymentKind.REFUND, 30),
        (PaymentKind.REFUND, 31),
    ]


def test_deposits_after_the_cutoff_are_refunded_one_by_one() -> None:
    state = completed([{0: 1}])
    late = dep(200, T1, CFT, DepositKind.FUND)
    batches = plan(state, [*standard_deposits(), late], FEE)
    assert [(b.kind, b.batch) for b in batches] == [
        (PaymentKind.PAYOUT, 0),
        (PaymentKind.REFUND, 200),
    ]
    assert gross_by_owner(batches[1:]) == {T1: CFT}


amounts = st.integers(min_value=0, max_value=3 * CFT)
kinds = st.sampled_from([*DepositKind, None])
senders = st.sampled_from([P, T0, T1, T2, BUYER.principal, None])


@settings(max_examples=150, deadline=None)
@given(
    deposits=st.lists(st.tuples(senders, amounts, kinds), max_size=14),
    samples=st.lists(
        st.dictionaries(st.sampled_from([0, 1, 2]), st.integers(1, 500), min_size=1),
        min_size=0,
        max_size=3,
    ),
    ending=st.sampled_from(list(Ending)),
    cutoff=st.integers(0, 16),
    weighting=st.sampled_from(list(Weighting)),
    participation=st.integers(0, 10_000),
)
def test_every_deposit_is_paid_out_exactly_once_and_plans_are_stable(
    deposits: list[tuple[Principal | None, int, DepositKind | None]],
    samples: list[dict[int, int]],
    ending: Ending,
    cutoff: int,
    weighting: Weighting,
    participation: int,
) -> None:
    """Σ gross + dust = Σ deposits with a sender (nothing created, nothing kept), for every
    ending; and a plan made with fewer deposits is a prefix-stable part of a later one."""
    state = EscrowState(
        terms(rounds=max(1, len(samples)), weighting=weighting, min_participation_bps=participation)
    )
    for number, contributions in enumerate(samples, start=1):
        by_identity = {TRAINERS[i]: n for i, n in contributions.items()}
        state, _ = accept_statement(state, round_statement(number, by_identity))
    if ending is Ending.COMPLETED and len(samples) < state.terms.rounds:
        ending = Ending.FAILED
    state = EscrowState(state.terms, state.rounds, Settlement(ending, cutoff, ANCHOR))
    made = [dep(i, who, amount, kind) for i, (who, amount, kind) in enumerate(deposits)]
    batches = plan(state, made, FEE)
    paid = sum(p.gross for b in batches for p in b.payments) + sum(b.dust for b in batches)
    assert paid == sum(d.amount for d in made if d.sender is not None)
    memos = [p.memo for b in batches for p in b.payments]
    assert len(memos) == len(set(memos))
    for batch in batches:
        for payment in batch.payments:
            assert payment.amount == payment.gross - FEE > 0
    # Planning again with more deposits keeps every batch that was already planned.
    earlier = {b.batch: b for b in plan(state, made[: len(made) // 2], FEE)}
    for batch in batches:
        if batch.batch in earlier and batch.batch != 0:
            assert earlier[batch.batch] == batch
