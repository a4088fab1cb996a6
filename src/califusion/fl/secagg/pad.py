"""Blind mode: a pad from the job key that keeps the server's aggregate masked.

Every contributing client u adds pad_u = PRG(HKDF(K_job, "secagg/blind-pad", round ‖ u)) to its
masked input, so after unmasking the server holds S + Σ_{u ∈ C} pad_u, uniformly random to
anyone without K_job. Members (holders of K_job) learn the contributor set C from the round
result and subtract the pads with :func:`remove_pad`, one PRG stream per contributor.

Why one pad per client rather than one shared pad P added by everyone: the server would then
hold S + |C|·P, and when |C| is even, |C|·P mod 2^w has its low bits forced to zero, so the low
bits of S would leak (|C| = 64 reveals the 6 low bits of every coordinate). Per-client pads sum
to a uniform value for any C; the price is |C| stream expansions for the member who removes
them, not for the server.
"""

from __future__ import annotations

from collections.abc import Iterable

from califusion.crypto.prg import GCM_KEYSTREAM, MaskArray, accumulate, derive_seed
from califusion.fl.secagg._keys import ids

PAD_PURPOSE = "secagg/blind-pad"


def pad_seed(job_key: bytes, round_id: bytes, client: int) -> bytes:
    """The seed of ``client``'s blind-mode pad in round ``round_id``."""
    return derive_seed(job_key, PAD_PURPOSE, round_id + ids(client))


def remove_pad(
    total: MaskArray,
    job_key: bytes,
    round_id: bytes,
    contributors: Iterable[int],
    *,
    prg: str = GCM_KEYSTREAM,
) -> MaskArray:
    """The unpadded sum: ``total − Σ pad_u`` over the round's contributors (a new array);
    ``prg`` is the round's (``SecAggConfig.prg``)."""
    unpadded = total.copy()
    seeds = [pad_seed(job_key, round_id, client) for client in sorted(set(contributors))]
    return accumulate(unpadded, subtract=seeds, prg=prg)
