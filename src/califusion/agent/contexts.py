"""The encryption contexts the agents agree on.

A context is bound into a ciphertext's associated data, so a ciphertext made for one purpose
cannot be replayed for another: a round-3 model is not accepted as round 4's, an update sealed
by trainer A for round 2 attempt 0 is not accepted from B or for another round.

Models are encrypted under the job key, which is unique to one job, so the model context names
the model's version (rounds aggregated so far) rather than the job id (the initial model is
encrypted before the coordinator assigns the id).
"""

from __future__ import annotations

from califusion.crypto.envelope import context


def model_context(version: int) -> bytes:
    """Version 0 is the initial model; version n is the result of round n."""
    return context("model", version=version)


def update_context(
    job_id: str, round_number: int, attempt: int, sender: str, recipient: str
) -> bytes:
    return context(
        "update",
        job=job_id,
        round=round_number,
        attempt=attempt,
        sender=sender,
        recipient=recipient,
    )


def job_key_context(job_id: str, recipient: str) -> bytes:
    return context("job-key", job=job_id, recipient=recipient)


def own_key_context(job_id: str) -> bytes:
    """The publisher's copy of a job key at rest, sealed to its own agreement key."""
    return context("job-key-at-rest", job=job_id)
