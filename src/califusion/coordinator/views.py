"""Rows → the protocol's response shapes. Keys leave as unpadded base64url."""

from __future__ import annotations

from collections.abc import Sequence

from califusion.coordinator.db.models import (
    JobRow,
    MemberRow,
    PrincipalRow,
    RoundRow,
    UpdateRow,
)
from califusion.coordinator.lifecycle import RoundStatus
from califusion.crypto.encoding import b64e
from califusion.protocol.jobs import (
    JobInfo,
    JobSpec,
    JobState,
    JobSummary,
    MemberInfo,
    MemberState,
    PrincipalInfo,
    RoundInfo,
    RoundMetrics,
    RoundState,
    UpdateInfo,
)


def principal_info(row: PrincipalRow) -> PrincipalInfo:
    return PrincipalInfo(
        principal=row.principal,
        signing_public=b64e(row.signing_public),
        agreement_public=b64e(row.agreement_public),
        display_name=row.display_name,
    )


def member_info(row: MemberRow) -> MemberInfo:
    return MemberInfo(
        trainer=row.trainer,
        state=MemberState(row.state),
        declared_samples=row.declared_samples,
        joined_at=row.joined_at,
        rounds_contributed=row.rounds_contributed,
    )


def job_spec(row: JobRow) -> JobSpec:
    return JobSpec.model_validate(row.spec)


def job_info(row: JobRow, members: Sequence[MemberRow]) -> JobInfo:
    return JobInfo(
        job_id=row.job_id,
        publisher=row.publisher,
        aggregator_agreement_public=b64e(row.aggregator_agreement_public),
        spec=job_spec(row),
        state=JobState(row.state),
        state_reason=row.state_reason,
        created_at=row.created_at,
        current_round=row.current_round,
        rounds_completed=row.rounds_completed,
        initial_model=row.initial_model,
        final_model=row.final_model,
        members=[member_info(m) for m in members],
    )


def job_summary(row: JobRow, admitted: int) -> JobSummary:
    spec = job_spec(row)
    return JobSummary(
        job_id=row.job_id,
        publisher=row.publisher,
        title=spec.title,
        state=JobState(row.state),
        rounds=spec.rounds,
        rounds_completed=row.rounds_completed,
        trainers_wanted=spec.trainers_wanted,
        trainers_admitted=admitted,
        reward_pool=spec.reward_pool,
        stake=spec.stake,
    )


def round_info(row: RoundRow, updates_received: int) -> RoundInfo:
    return RoundInfo(
        number=row.number,
        attempt=row.attempt,
        state=RoundState(row.state),
        model=row.model,
        opened_at=row.opened_at,
        deadline=row.deadline,
        updates_received=updates_received,
        result_model=row.result_model,
        contributors=list(row.contributors),
        metrics=None if row.metrics is None else RoundMetrics.model_validate(row.metrics),
    )


def update_info(row: UpdateRow) -> UpdateInfo:
    return UpdateInfo(trainer=row.trainer, update=row.update_digest, submitted_at=row.submitted_at)


def round_status(row: RoundRow, updates: int) -> RoundStatus:
    return RoundStatus(
        number=row.number,
        attempt=row.attempt,
        state=RoundState(row.state),
        opened_at=row.opened_at,
        deadline=row.deadline,
        updates=updates,
    )


def store_round_status(row: RoundRow, status: RoundStatus) -> None:
    """Write the rule's answer back into the round's row."""
    row.attempt = status.attempt
    row.state = status.state.value
    row.opened_at = status.opened_at
    row.deadline = status.deadline
