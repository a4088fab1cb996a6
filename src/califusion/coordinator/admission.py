"""Who may ask to join a job: a seam the ledger's stake check will fill.

The coordinator asks the policy before it records a join; the policy refuses by raising a
:class:`~califusion.core.errors.CaliFusionError` (``Conflict``, ``PermissionDenied``...). The
member is then created *pending*; the publisher's agent admits it by wrapping the job key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from califusion.core.errors import Conflict
from califusion.protocol.jobs import JobSpec


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


class AdmissionPolicy(Protocol):
    def review(self, request: JoinRequest) -> None:
        """Return to accept the join; raise to refuse it."""
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
