"""Which pending trainers the publisher's agent admits (and wraps the job key to).

A decider answers True (admit), False (reject) or None (not yet: wait, e.g. for a stake to
appear on the ledger). :class:`AdmitAll` admits everyone; :class:`StakeDecider` admits a trainer
only once the job's escrow shows its stake — publisher offline ⇒ admission waits, and nothing
is released unpaid.
"""

from __future__ import annotations

from typing import Protocol

from califusion.crypto.principal import Principal
from califusion.ledger.escrow_api import EscrowReader
from califusion.protocol import JobInfo, MemberInfo


class AdmissionDecider(Protocol):
    def decide(self, job: JobInfo, member: MemberInfo) -> bool | None: ...


class AdmitAll:
    """Admit every pending trainer (the coordinator caps joins at ``trainers_wanted``)."""

    def decide(self, job: JobInfo, member: MemberInfo) -> bool | None:
        return True


class StakeDecider:
    """Admit a trainer once the escrow shows its stake; until then wait (None), never reject.

    The publisher's agent asks the escrow itself (the ledger's facts), not the coordinator, so
    the job key is never wrapped to a trainer whose stake is not on the ledger.
    """

    def __init__(self, escrow: EscrowReader) -> None:
        self._escrow = escrow

    def decide(self, job: JobInfo, member: MemberInfo) -> bool | None:
        if job.spec.stake == 0:
            return True
        staked = self._escrow.status(job.job_id).stake_of(Principal.from_text(member.trainer))
        return True if staked >= job.spec.stake else None
