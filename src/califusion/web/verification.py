"""Round verification for the job page: each secure round's transcript, recomputed here.

A closed secure or blind round never changes, so its verdict is computed once per dashboard
process (``agent.secure_verify.verify_round``: the coordinator's signed transcript, every
trainer's signed commitment, the masked inputs re-hashed and re-summed) and kept. A page load
checks at most ``per_call`` rounds it has not seen; the live fragment's polling fills in the
rest, so a job with many rounds never makes one request slow. Only members may read a round's
evidence: for anyone else the verdict is "not a member", not an error.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from califusion.agent.client import CoordinatorClient
from califusion.agent.secure_verify import verify_round
from califusion.core.errors import CaliFusionError, PermissionDenied, Unavailable
from califusion.protocol import JobInfo, RoundInfo, RoundState

__all__ = ["RoundCheck", "RoundChecks"]


@dataclass(frozen=True)
class RoundCheck:
    """One round's verdict as the page shows it."""

    status: str  # verified | failed | pending | unavailable
    detail: str = ""


_PENDING = RoundCheck("pending", "checked when the page next refreshes")


class RoundChecks:
    """Verdicts of closed secure rounds, computed once each, thread-safe."""

    def __init__(self, client: CoordinatorClient, *, per_call: int = 3) -> None:
        self._client = client
        self._per_call = per_call
        self._done: dict[tuple[str, int, int], RoundCheck] = {}
        self._lock = threading.Lock()

    def for_job(self, job: JobInfo, rounds: list[RoundInfo]) -> dict[int, RoundCheck]:
        """Round number → verdict, for the closed rounds of a secure or blind job."""
        if job.spec.aggregation_mode == "publisher":
            return {}
        verdicts: dict[int, RoundCheck] = {}
        budget = self._per_call
        for rnd in sorted(rounds, key=lambda r: r.number):
            if rnd.state != RoundState.CLOSED:
                continue
            key = (job.job_id, rnd.number, rnd.attempt)
            with self._lock:
                known = self._done.get(key)
            if known is None and budget > 0:
                budget -= 1
                known = self._check(job.job_id, rnd.number)
                if known is not None:
                    with self._lock:
                        self._done[key] = known
            verdicts[rnd.number] = known or _PENDING
        return verdicts

    def _check(self, job_id: str, number: int) -> RoundCheck | None:
        """The verdict, or None when the coordinator could not be asked (try again later)."""
        try:
            verification = verify_round(self._client, job_id, number)
        except Unavailable:
            return None
        except PermissionDenied:
            return RoundCheck("unavailable", "only the job's members may read its transcripts")
        except CaliFusionError as exc:
            return RoundCheck("failed", str(exc))
        if verification.ok:
            return RoundCheck("verified", "the result is the sum of the committed inputs")
        findings = "; ".join(f"{f.kind}: {f.detail}" for f in verification.audit.findings)
        return RoundCheck("failed", findings)
