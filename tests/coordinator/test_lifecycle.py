"""The pure lifecycle rules, without database or clock."""

from __future__ import annotations

import pytest

from califusion.coordinator.admission import JoinRequest, OpenAdmission
from califusion.coordinator.lifecycle import (
    JobAction,
    RoundStatus,
    accept_update,
    advance_round,
    check_members_change,
    finish_round,
    job_transition,
    member_transition,
    open_round,
    start_training,
)
from califusion.core.errors import Conflict, IllegalTransition, InvalidInput
from califusion.protocol.jobs import JobState, MemberState, RoundState

from .factories import job_spec

NOW = 1_000.0
SPEC = job_spec(rounds=3, min_trainers_per_round=2, max_round_retries=1)

LEGAL = {
    (JobState.DRAFT, JobAction.OPEN): JobState.OPEN,
    (JobState.OPEN, JobAction.START): JobState.TRAINING,
    (JobState.DRAFT, JobAction.CANCEL): JobState.CANCELLED,
    (JobState.OPEN, JobAction.CANCEL): JobState.CANCELLED,
    (JobState.TRAINING, JobAction.CANCEL): JobState.CANCELLED,
    (JobState.TRAINING, JobAction.COMPLETE): JobState.COMPLETED,
    (JobState.TRAINING, JobAction.FAIL): JobState.FAILED,
}


@pytest.mark.parametrize("state", list(JobState))
@pytest.mark.parametrize("action", list(JobAction))
def test_job_transition_table(state: JobState, action: JobAction) -> None:
    if (state, action) in LEGAL:
        assert job_transition(state, action) is LEGAL[(state, action)]
        return
    with pytest.raises(IllegalTransition) as caught:
        job_transition(state, action)
    assert caught.value.detail["from_state"] == state.value
    assert caught.value.problem()["status"] == 409


def test_terminal_states_never_move() -> None:
    for state in (JobState.COMPLETED, JobState.CANCELLED, JobState.FAILED):
        for action in JobAction:
            with pytest.raises(IllegalTransition):
                job_transition(state, action)


def test_member_transitions() -> None:
    assert member_transition(MemberState.PENDING, MemberState.ADMITTED) is MemberState.ADMITTED
    assert member_transition(MemberState.PENDING, MemberState.REJECTED) is MemberState.REJECTED
    for state in (MemberState.ADMITTED, MemberState.REJECTED):
        with pytest.raises(IllegalTransition):
            member_transition(state, MemberState.ADMITTED)
    with pytest.raises(IllegalTransition):
        member_transition(MemberState.PENDING, MemberState.PENDING)


def test_members_change_only_while_open_or_training() -> None:
    check_members_change(JobState.OPEN, "joined")
    check_members_change(JobState.TRAINING, "joined")
    for state in (JobState.DRAFT, JobState.COMPLETED, JobState.CANCELLED, JobState.FAILED):
        with pytest.raises(Conflict):
            check_members_change(state, "joined")


def test_start_needs_enough_admitted_trainers() -> None:
    with pytest.raises(Conflict, match="1 trainer\\(s\\) admitted, 2 needed") as caught:
        start_training(JobState.OPEN, 1, SPEC, NOW)
    assert caught.value.detail == {"admitted": 1, "needed": 2}
    state, first = start_training(JobState.OPEN, 2, SPEC, NOW)
    assert state is JobState.TRAINING
    assert first == RoundStatus(1, 0, RoundState.COLLECTING, NOW, NOW + 60.0, 0)
    with pytest.raises(IllegalTransition):
        start_training(JobState.DRAFT, 5, SPEC, NOW)


def _collecting(updates: int, attempt: int = 0) -> RoundStatus:
    return RoundStatus(2, attempt, RoundState.COLLECTING, NOW, NOW + 60.0, updates)


def test_nothing_happens_before_the_deadline() -> None:
    rnd = _collecting(0)
    for now in (NOW, NOW + 60.0):  # the deadline itself still counts as in time
        progress = advance_round(JobState.TRAINING, rnd, SPEC, now)
        assert progress.round == rnd
        assert progress.job_state is JobState.TRAINING


def test_deadline_with_enough_updates_aggregates_what_arrived() -> None:
    progress = advance_round(JobState.TRAINING, _collecting(2), SPEC, NOW + 61)
    assert progress.round.state is RoundState.AGGREGATING
    assert progress.round.attempt == 0
    assert progress.job_state is JobState.TRAINING


def test_deadline_with_too_few_updates_retries_then_fails() -> None:
    later = NOW + 61
    retried = advance_round(JobState.TRAINING, _collecting(1), SPEC, later)
    assert retried.round == RoundStatus(2, 1, RoundState.COLLECTING, later, later + 60.0, 0)
    assert retried.job_state is JobState.TRAINING
    failed = advance_round(JobState.TRAINING, _collecting(1, attempt=1), SPEC, later)
    assert failed.round.state is RoundState.FAILED
    assert failed.job_state is JobState.FAILED
    assert failed.reason == "round 2: 1 update(s) by the deadline, 2 needed, no retries left"


def test_shortfall_policy_fail_fails_at_once() -> None:
    spec = job_spec(on_round_shortfall="fail", max_round_retries=5)
    failed = advance_round(JobState.TRAINING, _collecting(0), spec, NOW + 61)
    assert failed.job_state is JobState.FAILED
    assert "0 update(s) by the deadline, 2 needed" in failed.reason


def test_advance_is_idempotent() -> None:
    for start in (_collecting(2), _collecting(1), _collecting(1, attempt=1)):
        once = advance_round(JobState.TRAINING, start, SPEC, NOW + 61)
        twice = advance_round(once.job_state, once.round, SPEC, NOW + 61)
        assert twice.round == once.round
        assert twice.job_state == once.job_state


def test_advance_ignores_rounds_not_collecting_and_jobs_not_training() -> None:
    aggregating = RoundStatus(1, 0, RoundState.AGGREGATING, NOW, NOW + 1, 2)
    assert advance_round(JobState.TRAINING, aggregating, SPEC, NOW + 99).round == aggregating
    cancelled = advance_round(JobState.CANCELLED, _collecting(0), SPEC, NOW + 99)
    assert cancelled.job_state is JobState.CANCELLED
    assert cancelled.round == _collecting(0)


def test_accept_update_counts_and_aggregates_when_everyone_sent() -> None:
    rnd = _collecting(0)
    one = accept_update(JobState.TRAINING, rnd, 2, 0, already_submitted=False, admitted=2)
    assert (one.updates, one.state) == (1, RoundState.COLLECTING)
    two = accept_update(JobState.TRAINING, one, 2, 0, already_submitted=False, admitted=2)
    assert (two.updates, two.state) == (2, RoundState.AGGREGATING)


@pytest.mark.parametrize(
    ("number", "attempt", "already", "message"),
    [
        (3, 0, False, "round 3 is not the current round \\(2\\)"),
        (1, 0, False, "round 1 is not the current round"),
        (2, 1, False, "attempt 1 of round 2 is over"),
        (2, 0, True, "already submitted"),
    ],
)
def test_accept_update_refusals(number: int, attempt: int, already: bool, message: str) -> None:
    with pytest.raises(Conflict, match=message):
        accept_update(
            JobState.TRAINING,
            _collecting(0),
            number,
            attempt,
            already_submitted=already,
            admitted=3,
        )


def test_accept_update_refuses_when_not_collecting_or_not_training() -> None:
    aggregating = RoundStatus(2, 0, RoundState.AGGREGATING, NOW, NOW + 60, 2)
    with pytest.raises(Conflict, match="takes no more updates"):
        accept_update(JobState.TRAINING, aggregating, 2, 0, already_submitted=False, admitted=3)
    with pytest.raises(Conflict, match="job is open"):
        accept_update(JobState.OPEN, None, 1, 0, already_submitted=False, admitted=3)


def _aggregating(number: int) -> RoundStatus:
    return RoundStatus(number, 0, RoundState.AGGREGATING, NOW, NOW + 60, 2)


def test_finish_round_opens_the_next_round() -> None:
    result = finish_round(
        JobState.TRAINING,
        _aggregating(1),
        1,
        0,
        contributors=["a"],
        submitters=["a", "b"],
        spec=SPEC,
        now=NOW + 5,
    )
    assert result.closed.state is RoundState.CLOSED
    assert result.job_state is JobState.TRAINING
    assert result.next_round == open_round(2, SPEC, NOW + 5)


def test_finish_last_round_completes_the_job() -> None:
    result = finish_round(
        JobState.TRAINING,
        _aggregating(3),
        3,
        0,
        contributors=["a", "b"],
        submitters=["a", "b"],
        spec=SPEC,
        now=NOW,
    )
    assert result.job_state is JobState.COMPLETED
    assert result.next_round is None


@pytest.mark.parametrize(
    ("contributors", "error"),
    [([], InvalidInput), (["a", "a"], InvalidInput), (["a", "z"], InvalidInput)],
)
def test_finish_round_checks_contributors(contributors: list[str], error: type[Exception]) -> None:
    with pytest.raises(error):
        finish_round(
            JobState.TRAINING,
            _aggregating(1),
            1,
            0,
            contributors=contributors,
            submitters=["a", "b"],
            spec=SPEC,
            now=NOW,
        )


def test_finish_round_needs_an_aggregating_round_and_the_right_attempt() -> None:
    with pytest.raises(IllegalTransition, match="only while it is aggregating"):
        finish_round(
            JobState.TRAINING,
            _collecting(2),
            2,
            0,
            contributors=["a"],
            submitters=["a"],
            spec=SPEC,
            now=NOW,
        )
    with pytest.raises(Conflict, match="attempt 1 of round 1 is over"):
        finish_round(
            JobState.TRAINING,
            _aggregating(1),
            1,
            1,
            contributors=["a"],
            submitters=["a"],
            spec=SPEC,
            now=NOW,
        )


def _join(pending: int, admitted: int) -> JoinRequest:
    return JoinRequest("job-x", SPEC, "pub", "trainer", 10, pending, admitted)


def test_open_admission_accepts_until_full() -> None:
    policy = OpenAdmission()
    policy.review(_join(1, 1))  # 2 of 3 taken
    with pytest.raises(Conflict, match="job is full: 3 trainer\\(s\\) joined or waiting, 3 wanted"):
        policy.review(_join(2, 1))
