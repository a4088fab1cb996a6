"""Who may join a job, and when a job may open: the coordinator's checks against the ledger.

The coordinator asks the policy before it records a join (:meth:`AdmissionPolicy.review`) and
before a draft opens (:meth:`AdmissionPolicy.review_open`); the policy refuses by raising a
:class:`~califusion.core.errors.CaliFusionError` (``Conflict``, ``PermissionDenied``...). A
member is then created *pending*; the publisher's agent admits it by wrapping the job key, after
checking the stake itself (``agent.admission``): the coordinator is not trusted with money, so
these checks spare honest users a wasted step, they protect nobody's tokens.

- :class:`OpenAdmission`: anyone registered may join while the job has room.
- :class:`StakeAdmission`: the same, and the escrow must show it — a job opens only once its
  signed escrow terms match the spec and the reward pool is in its escrow account; a trainer
  joins only once its stake is there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from califusion.core.errors import Conflict
from califusion.crypto.principal import Principal
from califusion.ledger.escrow_api import EscrowReader
from califusion.ledger.escrow_ids import escrow_account
from califusion.ledger.escrow_store import EscrowStatus
from califusion.ledger.escrow_terms import terms_differences
from califusion.protocol.jobs import JobSpec
from califusion.protocol.payout import escrow_fields, format_tokens


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """Everything a policy may look at; no database handle, so a policy stays testable."""

    job_id: str
    spec: JobSpec
    publisher: str
    trainer: str
    declared_samples: int
    pending: int  # members waiting for admission
    admitted: int  # members already admitted


@dataclass(frozen=True, slots=True)
class OpenRequest:
    """A publisher asks to open its draft job."""

    job_id: str
    spec: JobSpec
    publisher: str


class AdmissionPolicy(Protocol):
    def review(self, request: JoinRequest) -> None:
        """Return to accept the join; raise to refuse it."""
        ...

    def review_open(self, request: OpenRequest) -> None:
        """Return to let the job open; raise to refuse."""
        ...


class OpenAdmission:
    """Anyone registered may join while the job has room (pending + admitted < wanted)."""

    def review(self, request: JoinRequest) -> None:
        taken = request.pending + request.admitted
        wanted = request.spec.trainers_wanted
        if taken >= wanted:
            raise Conflict(
                f"job is full: {taken} trainer(s) joined or waiting, {wanted} wanted",
                joined=taken,
                wanted=wanted,
            )

    def review_open(self, request: OpenRequest) -> None:
        return None


def _has_money(spec: JobSpec) -> bool:
    return spec.reward_pool > 0 or spec.stake > 0 or spec.price is not None


class StakeAdmission:
    """:class:`OpenAdmission`, plus what the escrow must show: funded terms, paid stakes."""

    def __init__(self, escrow: EscrowReader, *, room: AdmissionPolicy | None = None) -> None:
        self._escrow = escrow
        self._room = room if room is not None else OpenAdmission()

    def _status(self, job_id: str, spec: JobSpec, publisher: str) -> EscrowStatus:
        status = self._escrow.status(job_id)
        if status.terms is None:
            raise Conflict(
                f"no escrow terms are registered for {job_id}: the publisher's agent signs and "
                "registers them when it funds the job",
                escrow_account=str(escrow_account(job_id)),
            )
        wrong = terms_differences(status.terms, escrow_fields(spec, publisher))
        if wrong:
            raise Conflict(
                f"the escrow terms of {job_id} do not match its spec ({', '.join(wrong)})",
                fields=wrong,
            )
        return status

    def review_open(self, request: OpenRequest) -> None:
        self._room.review_open(request)
        spec = request.spec
        if not _has_money(spec):
            return
        status = self._status(request.job_id, spec, request.publisher)
        if status.funded < spec.reward_pool:
            raise Conflict(
                f"a reward pool of {format_tokens(spec.reward_pool)} must be in escrow before "
                f"{request.job_id} opens; {format_tokens(status.funded)} is there. Transfer the "
                f"rest to {status.account} with the job's funding memo",
                funded=status.funded,
                reward_pool=spec.reward_pool,
            )

    def review(self, request: JoinRequest) -> None:
        self._room.review(request)
        spec = request.spec
        if spec.stake == 0:
            return
        status = self._status(request.job_id, spec, request.publisher)
        staked = status.stake_of(Principal.from_text(request.trainer))
        if staked < spec.stake:
            raise Conflict(
                f"a stake of {format_tokens(spec.stake)} is required to join {request.job_id} "
                f"and the escrow shows none from {request.trainer}: approve the job's escrow "
                f"account {status.account} and collect the stake, or transfer it there with "
                "the job's stake memo, then join",
                stake=spec.stake,
            )
