"""The job lifecycle and round progression as pure functions.

Each function takes the current state, an input and ``now`` and returns the new state or raises
(:class:`IllegalTransition` for a move the state machine refuses, :class:`Conflict` for an input
that does not fit the current round). No database, no clock: the services load state, call these
and store what they return, so every rule is tested here directly.

    job:    draft ──open──▶ open ──start──▶ training ──last result──▶ completed
              │               │               │ └──────shortfall──────▶ failed
              └───────────────┴─────cancel────┴───────────────────────▶ cancelled

    round:  collecting ──all admitted submitted, or deadline with ≥ min updates──▶ aggregating
               │  ▲                                                                │
               │  └─deadline, too few updates, retries left: attempt + 1           │ result
               └────deadline, too few updates, no retries: failed (job fails)      ▼
                                                                                 closed
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum

from califusion.core.errors import Conflict, IllegalTransition, InvalidInput
from califusion.protocol.jobs import JobSpec, JobState, MemberState, RoundState


class JobAction(StrEnum):
    OPEN = "open"
    START = "start"
    CANCEL = "cancel"
    COMPLETE = "complete"
    FAIL = "fail"


_MOVES: dict[JobAction, tuple[frozenset[JobState], JobState]] = {
    JobAction.OPEN: (frozenset({JobState.DRAFT}), JobState.OPEN),
    JobAction.START: (frozenset({JobState.OPEN}), JobState.TRAINING),
    JobAction.CANCEL: (
        frozenset({JobState.DRAFT, JobState.OPEN, JobState.TRAINING}),
        JobState.CANCELLED,
    ),
    JobAction.COMPLETE: (frozenset({JobState.TRAINING}), JobState.COMPLETED),
    JobAction.FAIL: (frozenset({JobState.TRAINING}), JobState.FAILED),
}

JOINABLE = frozenset({JobState.OPEN, JobState.TRAINING})


def job_transition(state: JobState, action: JobAction) -> JobState:
    """The state ``action`` moves a job in ``state`` to."""
    sources, target = _MOVES[action]
    if state not in sources:
        allowed = " or ".join(sorted(sources))
        raise IllegalTransition(
            f"cannot {action} a job that is {state}: only a job that is {allowed} "
            f"can move to {target}",
            from_state=state.value,
            to_state=target.value,
        )
    return target


def member_transition(state: MemberState, target: MemberState) -> MemberState:
    """Admit or reject a member: only a pending member can be either."""
    if state is not MemberState.PENDING or target is MemberState.PENDING:
        raise IllegalTransition(
            f"a member that is {state} cannot become {target}; only pending members are "
            f"admitted or rejected",
            from_state=state.value,
            to_state=target.value,
        )
    return target


def check_members_change(state: JobState, what: str) -> None:
    """Trainers join, and are admitted, while a job is open or training (late joiners)."""
    if state not in JOINABLE:
        raise Conflict(
            f"job is {state}: trainers can be {what} only while it is open or training",
            job_state=state.value,
        )


@dataclass(frozen=True, slots=True)
class RoundStatus:
    """What the rules need to know about a job's current round."""

    number: int
    attempt: int
    state: RoundState
    opened_at: float
    deadline: float
    updates: int  # received in this attempt; earlier attempts' updates do not count


def open_round(number: int, spec: JobSpec, now: float) -> RoundStatus:
    return RoundStatus(
        number=number,
        attempt=0,
        state=RoundState.COLLECTING,
        opened_at=now,
        deadline=now + spec.round_deadline_seconds,
        updates=0,
    )


def start_training(
    state: JobState, admitted: int, spec: JobSpec, now: float
) -> tuple[JobState, RoundStatus]:
    """open → training, opening round 1, if enough trainers are admitted."""
    target = job_transition(state, JobAction.START)
    needed = spec.min_trainers_per_round
    if admitted < needed:
        raise Conflict(
            f"{admitted} trainer(s) admitted, {needed} needed to start "
            f"(min_trainers_per_round); admit more trainers first",
            admitted=admitted,
            needed=needed,
        )
    return target, open_round(1, spec, now)


@dataclass(frozen=True, slots=True)
class Progress:
    """The outcome of :func:`advance_round`: the round, the job's state and why it changed."""

    round: RoundStatus
    job_state: JobState
    reason: str = ""


def is_due(job_state: JobState, rnd: RoundStatus, now: float) -> bool:
    """Whether :func:`advance_round` would change anything."""
    return (
        job_state is JobState.TRAINING
        and rnd.state is RoundState.COLLECTING
        and (now > rnd.deadline)
    )


def advance_round(job_state: JobState, rnd: RoundStatus, spec: JobSpec, now: float) -> Progress:
    """Apply the round deadline. Idempotent: applying it again to its result changes nothing."""
    if not is_due(job_state, rnd, now):
        return Progress(rnd, job_state)
    return close_collection(job_state, rnd, spec, now)


def close_collection(job_state: JobState, rnd: RoundStatus, spec: JobSpec, now: float) -> Progress:
    """Stop collecting updates: aggregate if enough arrived, else retry or fail the round.

    The deadline applies it; so does a secure-aggregation session that finished (its
    contributors are the round's updates) or aborted (no updates)."""
    needed = spec.min_trainers_per_round
    if rnd.updates >= needed:
        return Progress(replace(rnd, state=RoundState.AGGREGATING), job_state)
    retry = spec.on_round_shortfall == "retry"
    if retry and rnd.attempt < spec.max_round_retries:
        fresh = replace(
            rnd,
            attempt=rnd.attempt + 1,
            opened_at=now,
            deadline=now + spec.round_deadline_seconds,
            updates=0,
        )
        return Progress(fresh, job_state)
    why = "no retries left" if retry else "the spec says fail on a shortfall"
    reason = f"round {rnd.number}: {rnd.updates} update(s) by the deadline, {needed} needed, {why}"
    failed = replace(rnd, state=RoundState.FAILED)
    return Progress(failed, job_transition(job_state, JobAction.FAIL), reason)


def _check_current(
    job_state: JobState, rnd: RoundStatus | None, number: int, attempt: int, doing: str
) -> RoundStatus:
    if job_state is not JobState.TRAINING or rnd is None:
        raise Conflict(f"job is {job_state}: nothing to {doing}", job_state=job_state.value)
    if number != rnd.number:
        raise Conflict(
            f"round {number} is not the current round ({rnd.number})", current_round=rnd.number
        )
    if attempt != rnd.attempt:
        raise Conflict(
            f"attempt {attempt} of round {number} is over; the current attempt is "
            f"{rnd.attempt}: fetch the current round and {doing} for it",
            current_attempt=rnd.attempt,
        )
    return rnd


def accept_update(
    job_state: JobState,
    rnd: RoundStatus | None,
    number: int,
    attempt: int,
    *,
    already_submitted: bool,
    admitted: int,
) -> RoundStatus:
    """Count one more update; the round aggregates as soon as every admitted trainer sent one."""
    current = _check_current(job_state, rnd, number, attempt, "submit")
    if current.state is not RoundState.COLLECTING:
        raise Conflict(
            f"round {number} is {current.state}: it takes no more updates",
            round_state=current.state.value,
        )
    if already_submitted:
        raise Conflict(f"an update for round {number} attempt {attempt} was already submitted")
    updates = current.updates + 1
    state = RoundState.AGGREGATING if updates >= admitted else RoundState.COLLECTING
    return replace(current, updates=updates, state=state)


@dataclass(frozen=True, slots=True)
class RoundResult:
    """The outcome of :func:`finish_round`."""

    closed: RoundStatus
    job_state: JobState
    next_round: RoundStatus | None


def finish_round(
    job_state: JobState,
    rnd: RoundStatus | None,
    number: int,
    attempt: int,
    *,
    contributors: Sequence[str],
    submitters: Collection[str],
    spec: JobSpec,
    now: float,
) -> RoundResult:
    """Close an aggregating round with its result; complete the job or open the next round."""
    current = _check_current(job_state, rnd, number, attempt, "publish a result")
    if current.state is not RoundState.AGGREGATING:
        raise IllegalTransition(
            f"round {number} is {current.state}: a result is published only while it is "
            f"aggregating",
            from_state=current.state.value,
            to_state=RoundState.CLOSED.value,
        )
    if not contributors:
        raise InvalidInput("contributors must name at least one trainer whose update was used")
    if len(set(contributors)) != len(contributors):
        raise InvalidInput("contributors names a trainer more than once")
    strangers = sorted(set(contributors) - set(submitters))
    if strangers:
        raise InvalidInput(
            f"contributors must have submitted an update in round {number} attempt {attempt}; "
            f"these did not: {', '.join(strangers)}",
            contributors=strangers,
        )
    closed = replace(current, state=RoundState.CLOSED)
    if number >= spec.rounds:
        return RoundResult(closed, job_transition(job_state, JobAction.COMPLETE), None)
    return RoundResult(closed, job_state, open_round(number + 1, spec, now))
