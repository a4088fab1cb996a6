"""Secure aggregation: the coordinator hosts one SecAgg+ server per round attempt.

Trainers post protocol messages and poll their inbox; the coordinator applies them to the
session's pure server (``fl.secagg``), logs each accepted input and releases the server's
replies. Every operation runs under the job's row lock and first applies a stage deadline
that has passed (the background ticker does the same for sessions nobody polls), so a dropout
is decided once, at the deadline, whichever worker sees it. What the coordinator learns: the
participants' keys and encrypted shares, masked vectors, the shares needed to unmask, and the
sum of the contributors' quantized updates — in blind mode only that sum plus the members'
pads. Round-trip state lives in the database (``services.secagg_engine``), so a restarted or
second coordinator carries on where the first stopped.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from califusion.coordinator.db.engine import Database
from califusion.coordinator.db.models import JobRow, RoundRow
from califusion.coordinator.db.repositories import JobRepository
from califusion.coordinator.db.secagg_models import SecAggSessionRow
from califusion.coordinator.db.secagg_repository import (
    ACTIVE_STAGES,
    SecAggRepository,
    SessionKey,
)
from califusion.coordinator.identity import ServiceIdentity
from califusion.coordinator.progress import load_job
from califusion.coordinator.services.secagg_engine import LiveSession, SessionEngine, key_of
from califusion.coordinator.services.secagg_rounds import (
    abort_session,
    create_session,
    finish_session,
)
from califusion.coordinator.views import job_spec
from califusion.core.clock import Clock
from califusion.core.errors import (
    CaliFusionError,
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from califusion.crypto.encoding import b64d, b64e
from califusion.fl.secagg import Event, MaskedInputRef, Stage, decode_client
from califusion.protocol.jobs import JobState, MemberState, RoundState
from califusion.protocol.secagg import (
    CoordinatorInfo,
    PostSecAggMessage,
    SecAggEventInfo,
    SecAggEvidence,
    SecAggInbox,
    SecAggParticipant,
    SecAggSession,
)
from califusion.storage.blobs import BlobStore

log = logging.getLogger(__name__)


@dataclass
class _Scope:
    """What one operation works on, inside its transaction."""

    repo: JobRepository
    srepo: SecAggRepository
    job: JobRow
    rnd: RoundRow


class SecAggService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        blobs: BlobStore,
        identity: ServiceIdentity,
        engine: SessionEngine | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._blobs = blobs
        self._identity = identity
        self._engine = engine if engine is not None else SessionEngine(blobs)

    def coordinator_info(self) -> CoordinatorInfo:
        return CoordinatorInfo(
            principal=self._identity.principal.to_text(),
            signing_public=b64e(self._identity.public_bytes),
        )

    # ---- operations -----------------------------------------------------------------------

    def session(self, caller: str, job_id: str, number: int) -> SecAggSession:
        """The round's current session (made now if the round collects and has none yet)."""
        now = self._clock.now()
        with self._scope(job_id, number, now) as scope:
            _require_member(scope.repo, scope.job, caller)
            row = self._row(scope, now, create=True)
            with self._evicting(key_of(row)):
                self._sync(scope, row, now)
            return _session_view(row, caller)

    def post(
        self, caller: str, job_id: str, number: int, request: PostSecAggMessage
    ) -> SecAggInbox:
        """Apply one of the caller's protocol messages; returns the caller's inbox after it.

        A message the server refuses (forged, replayed, late, malformed) raises after the
        transaction commits, so a deadline applied on the way still counts."""
        now = self._clock.now()
        body = b64d(request.message)
        message = decode_client(body)
        rejection: CaliFusionError | None = None
        with self._scope(job_id, number, now) as scope:
            if request.attempt != scope.rnd.attempt:
                raise Conflict(
                    f"attempt {request.attempt} of round {number} is over; the current attempt "
                    f"is {scope.rnd.attempt}",
                    current_attempt=scope.rnd.attempt,
                )
            row = self._row(scope, now, create=False)
            sender = message.sender
            if not 0 <= sender < len(row.participants) or (
                row.participants[sender]["principal"] != caller
            ):
                raise PermissionDenied(
                    "a trainer can post secure-aggregation messages only as itself"
                )
            if isinstance(message, MaskedInputRef) and not self._blobs.exists(message.blob.hex()):
                raise InvalidInput(
                    f"masked input blob {message.blob.hex()} does not exist; upload it first"
                )
            with self._evicting(key_of(row)):
                live = self._sync(scope, row, now)
                if live is None:
                    rejection = Conflict(f"the session is {row.stage}: it takes no more messages")
                else:
                    try:
                        self._engine.record(scope.srepo, row, live, Event(now, body))
                    except CaliFusionError as error:
                        rejection = error
                    else:
                        self._settle(scope, row, live, now)
                inbox = _inbox_view(row, live, sender)
        if rejection is not None:
            raise rejection
        return inbox

    def inbox(self, caller: str, job_id: str, number: int, attempt: int) -> SecAggInbox:
        now = self._clock.now()
        with self._scope(job_id, number, now) as scope:
            row = scope.srepo.get((job_id, number, attempt))
            if row is None:
                raise NotFound(
                    f"round {number} attempt {attempt} has no secure-aggregation session"
                )
            client = _client_of(row, caller)
            if client is None:
                raise PermissionDenied(f"{caller} takes no part in this session")
            with self._evicting(key_of(row)):
                live = self._sync(scope, row, now)
            return _inbox_view(row, live, client)

    def evidence(self, caller: str, job_id: str, number: int) -> SecAggEvidence:
        """The signed transcript and the event log of the round's finished session."""
        now = self._clock.now()
        with self._scope(job_id, number, now) as scope:
            _require_member(scope.repo, scope.job, caller)
            row = scope.srepo.get((job_id, number, scope.rnd.attempt))
            if row is None or row.transcript is None or row.transcript_signature is None:
                raise NotFound(f"round {number} of {job_id} has no finished secure aggregation")
            events = scope.srepo.events(key_of(row))
            return SecAggEvidence(
                transcript=row.transcript,
                signature=b64e(row.transcript_signature),
                events=[SecAggEventInfo(at=e.at, body=b64e(e.body)) for e in events],
            )

    def tick(self) -> int:
        """Apply every passed stage deadline; how many sessions changed."""
        now = self._clock.now()
        with self._db.transaction() as session:
            due = SecAggRepository(session).due(now)
        changed = 0
        for job_id, number, attempt in due:
            # One transaction per session: a failing one does not hold up the others.
            try:
                with self._scope(job_id, number, now) as scope:
                    row = scope.srepo.get((job_id, number, attempt))
                    if row is None or row.stage not in ACTIVE_STAGES:
                        continue
                    with self._evicting(key_of(row)):
                        self._sync(scope, row, now)
                    changed += 1
            except CaliFusionError as error:
                log.warning(
                    "secure aggregation tick failed",
                    extra={"job_id": job_id, "round": number, "error": str(error)},
                )
        return changed

    # ---- helpers --------------------------------------------------------------------------

    @contextmanager
    def _scope(self, job_id: str, number: int, now: float) -> Iterator[_Scope]:
        with self._db.transaction() as session:
            repo = JobRepository(session)
            job = load_job(repo, job_id, now)
            if job_spec(job).aggregation_mode == "publisher":
                raise Conflict(
                    f"job {job_id} is aggregated by its publisher, not securely: trainers "
                    f"submit sealed updates to /v1/jobs/{job_id}/rounds/{number}/updates"
                )
            rnd = repo.round(job_id, number)
            if rnd is None:
                raise NotFound(f"job {job_id} has no round {number}")
            yield _Scope(repo, SecAggRepository(session), job, rnd)

    @contextmanager
    def _evicting(self, key: SessionKey) -> Iterator[None]:
        """Forget the cached server if anything fails: it may be ahead of the database."""
        try:
            yield
        except BaseException:
            self._engine.evict(key)
            raise

    def _row(self, scope: _Scope, now: float, *, create: bool) -> SecAggSessionRow:
        job, rnd = scope.job, scope.rnd
        row = scope.srepo.get((job.job_id, rnd.number, rnd.attempt))
        if row is not None:
            return row
        collecting = (
            job.state == JobState.TRAINING.value
            and job.current_round == rnd.number
            and rnd.state == RoundState.COLLECTING.value
        )
        if not (create and collecting):
            raise NotFound(
                f"round {rnd.number} attempt {rnd.attempt} of {job.job_id} has no "
                f"secure-aggregation session; fetch the session first"
            )
        return create_session(scope.repo, scope.srepo, job, rnd, now)

    def _sync(self, scope: _Scope, row: SecAggSessionRow, now: float) -> LiveSession | None:
        """The live server of an active session after a due deadline; None once it ended."""
        if row.stage not in ACTIVE_STAGES:
            return None
        job, rnd = scope.job, scope.rnd
        current = (
            job.state == JobState.TRAINING.value
            and job.current_round == row.round_number
            and rnd.attempt == row.attempt
            and rnd.state == RoundState.COLLECTING.value
        )
        if not current:  # the round moved on (its deadline retried it, the job was cancelled)
            row.stage = Stage.ABORTED.value
            row.abort_reason = "the round attempt ended before secure aggregation finished"
            self._engine.evict(key_of(row))
            return None
        live = self._engine.live(scope.srepo, row)
        if now >= live.server.deadline:
            self._engine.record(scope.srepo, row, live, Event(now))
            self._settle(scope, row, live, now)
        return live if row.stage in ACTIVE_STAGES else None

    def _settle(self, scope: _Scope, row: SecAggSessionRow, live: LiveSession, now: float) -> None:
        stage = live.server.stage
        if stage is Stage.DONE:
            finish_session(
                scope.repo,
                scope.job,
                scope.rnd,
                row,
                live,
                blobs=self._blobs,
                identity=self._identity,
                now=now,
            )
        elif stage is Stage.ABORTED:
            aborted = live.server.aborted
            abort_session(scope.job, scope.rnd, row, str(aborted) if aborted else "aborted", now)
        else:
            return
        self._engine.evict(key_of(row))


def _require_member(repo: JobRepository, job: JobRow, caller: str) -> None:
    if caller == job.publisher:
        return
    member = repo.member(job.job_id, caller)
    if member is None or member.state != MemberState.ADMITTED:
        raise PermissionDenied(f"only the publisher and admitted trainers of {job.job_id} may")


def _client_of(row: SecAggSessionRow, principal: str) -> int | None:
    for client, participant in enumerate(row.participants):
        if participant["principal"] == principal:
            return client
    return None


def _session_view(row: SecAggSessionRow, caller: str) -> SecAggSession:
    return SecAggSession(
        job_id=row.job_id,
        round=row.round_number,
        attempt=row.attempt,
        mode="blind" if row.mode == "blind" else "secure",
        round_id=b64e(row.round_id),
        config=row.config,
        start=row.start,
        participants=[
            SecAggParticipant(
                client=client,
                principal=p["principal"],
                signing_public=b64e(bytes.fromhex(p["signing_public"])),
                declared_samples=p["declared_samples"],
            )
            for client, p in enumerate(row.participants)
        ],
        stage=row.stage,
        deadline=row.deadline,
        you=_client_of(row, caller),
        abort_reason=row.abort_reason,
        result=row.result_digest,
        contributors=row.contributors,
        dropped=row.dropped,
    )


def _inbox_view(row: SecAggSessionRow, live: LiveSession | None, client: int) -> SecAggInbox:
    messages = live.outbox.get(client, []) if live is not None else []
    return SecAggInbox(
        attempt=row.attempt,
        stage=row.stage,
        deadline=row.deadline,
        messages=[b64e(m) for m in messages],
        abort_reason=row.abort_reason,
    )
