"""How a secure-aggregation session starts from a round, and how its end moves the round on.

A session is made the first time anyone asks for the current round's (lazily, so the admitted
trainers at that moment are its participants, sorted by principal; client id = position). Its
parameters are a pure function of the job spec and the participants (``protocol.secagg``), its
round id is bound to (job, round, attempt) and its server starts so that the advertise stage
spans the first stage timeouts of the round (that window also covers local training).

When the session ends:

* done — the coordinator stores the modular sum as a blob (in blind mode it is padded, so the
  coordinator never holds the plain sum), signs the round transcript (with the survivor set
  the clients signed in the consistency check, and their signatures) with its own key, records
  each contributor's masked input as the round's update (so the lifecycle's rules — counts,
  contributors ⊆ submitters — hold unchanged) and closes collection: the round aggregates;
* aborted — nothing is revealed and the round closes with no updates, so the job's shortfall
  rule applies (retry the round as a new attempt, or fail the job), with the abort's reason.
"""

from __future__ import annotations

import logging

import numpy as np

from califusion.coordinator.db.models import JobRow, RoundRow, UpdateRow
from califusion.coordinator.db.repositories import JobRepository, PrincipalRepository
from califusion.coordinator.db.secagg_models import SecAggSessionRow
from califusion.coordinator.db.secagg_repository import SecAggRepository
from califusion.coordinator.identity import ServiceIdentity
from califusion.coordinator.lifecycle import close_collection
from califusion.coordinator.progress import bump
from califusion.coordinator.services.secagg_engine import LiveSession
from califusion.coordinator.views import job_spec, round_status, store_round_status
from califusion.core.errors import InvalidInput
from califusion.fl.secagg import (
    SecAggConfig,
    Transcript,
    session_round_id,
    sign_transcript,
    vector_digest,
)
from califusion.fl.secagg.transcript import SignedSurvivors, session_label
from califusion.protocol.jobs import JobState, MemberState, RoundState
from califusion.protocol.secagg import plan_arguments, session_start
from califusion.storage.blobs import BlobStore

log = logging.getLogger(__name__)


def create_session(
    repo: JobRepository, srepo: SecAggRepository, job: JobRow, rnd: RoundRow, now: float
) -> SecAggSessionRow:
    """The session of the round's current attempt, with the admitted trainers as participants."""
    spec = job_spec(job)
    principals = PrincipalRepository(repo.session)
    participants = []
    for member in sorted(repo.members(job.job_id), key=lambda m: m.trainer):
        principal = principals.get(member.trainer)
        if member.state == MemberState.ADMITTED and principal is not None:
            participants.append(
                {
                    "principal": member.trainer,
                    "signing_public": principal.signing_public.hex(),
                    "declared_samples": member.declared_samples,
                }
            )
    start = session_start(spec, rnd.opened_at)
    n = len(participants)
    try:
        config = SecAggConfig.plan(range(n), **plan_arguments(spec, n))
        config_data, stage, reason = config.to_dict(), "advertise-keys", ""
        deadline = start + config.stage_timeout
    except InvalidInput as error:
        config_data, stage, deadline = {}, "aborted", now
        reason = f"secure aggregation cannot run with {n} participant(s): {error}"
    row = SecAggSessionRow(
        job_id=job.job_id,
        round_number=rnd.number,
        attempt=rnd.attempt,
        mode=spec.aggregation_mode,
        round_id=session_round_id(job.job_id, rnd.number, rnd.attempt),
        config=config_data,
        start=start,
        participants=participants,
        stage=stage,
        deadline=deadline,
        events=0,
        result_digest=None,
        contributors=[],
        dropped=[],
        abort_reason=reason,
        transcript=None,
        transcript_signature=None,
        created_at=now,
    )
    srepo.add(row)
    log.info(
        "secure aggregation session opened",
        extra={"job_id": job.job_id, "round": rnd.number, "attempt": rnd.attempt, "n": n},
    )
    if stage == "aborted":
        conclude_round(job, rnd, updates=0, now=now, why=reason)
    return row


def finish_session(
    repo: JobRepository,
    job: JobRow,
    rnd: RoundRow,
    row: SecAggSessionRow,
    live: LiveSession,
    *,
    blobs: BlobStore,
    identity: ServiceIdentity,
    now: float,
) -> None:
    """The session is done: store the sum, sign the transcript, let the round aggregate."""
    result = live.server.result
    row.result_digest = blobs.put(np.ascontiguousarray(result.total).tobytes())
    contributors = sorted(result.contributors)
    row.contributors = contributors
    row.dropped = sorted(result.dropped)
    transcript = Transcript(
        session=session_label(row.job_id, row.round_number, row.attempt),
        mode=row.mode,
        round_id=row.round_id,
        config=live.config,
        start=row.start,
        labels=tuple(p["principal"] for p in row.participants),
        identities=tuple(bytes.fromhex(p["signing_public"]) for p in row.participants),
        commitments=tuple(live.commitments[c] for c in sorted(live.commitments)),
        contributors=result.contributors,
        dropped=result.dropped,
        result_digest=vector_digest(result.total, live.config.commitment),
        log_digest=live.log_digest,
        consistency=SignedSurvivors(
            *live.server.survivor_set,
            tuple((s.sender, s.signature) for s in live.server.consistency_signatures),
        ),
    )
    row.transcript = transcript.canonical().decode()
    row.transcript_signature = sign_transcript(transcript, identity)
    for client in contributors:
        repo.add_update(
            UpdateRow(
                job_id=row.job_id,
                round_number=row.round_number,
                attempt=row.attempt,
                trainer=row.participants[client]["principal"],
                update_digest=live.blobs[client].hex(),
                submitted_at=now,
            )
        )
    log.info(
        "secure aggregation done",
        extra={
            "job_id": row.job_id,
            "round": row.round_number,
            "attempt": row.attempt,
            "contributors": len(contributors),
            "dropped": len(row.dropped),
        },
    )
    conclude_round(job, rnd, updates=len(contributors), now=now)


def abort_session(job: JobRow, rnd: RoundRow, row: SecAggSessionRow, why: str, now: float) -> None:
    row.stage = "aborted"
    row.abort_reason = why
    log.warning(
        "secure aggregation aborted",
        extra={"job_id": row.job_id, "round": row.round_number, "attempt": row.attempt},
    )
    conclude_round(job, rnd, updates=0, now=now, why=why)


def conclude_round(job: JobRow, rnd: RoundRow, *, updates: int, now: float, why: str = "") -> None:
    """Close the round's collection with ``updates`` contributions, if it still collects."""
    status = round_status(rnd, updates)
    if job.state != JobState.TRAINING.value or status.state is not RoundState.COLLECTING:
        return
    progress = close_collection(JobState.TRAINING, status, job_spec(job), now)
    store_round_status(rnd, progress.round)
    job.state = progress.job_state.value
    if progress.reason:
        job.state_reason = f"{progress.reason} ({why})" if why else progress.reason
    bump(job)
