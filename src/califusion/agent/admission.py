"""Which pending trainers the publisher's agent admits (and wraps the job key to).

This is the seam the ledger issue fills with a stake check: a decider answers True (admit),
False (reject) or None (not yet: wait, e.g. for a stake to appear on the ledger).
"""

from __future__ import annotations

from typing import Protocol

from califusion.protocol import JobInfo, MemberInfo


class AdmissionDecider(Protocol):
    def decide(self, job: JobInfo, member: MemberInfo) -> bool | None: ...


class AdmitAll:
    """Admit every pending trainer (the coordinator caps joins at ``trainers_wanted``)."""

    def decide(self, job: JobInfo, member: MemberInfo) -> bool | None:
        return True
