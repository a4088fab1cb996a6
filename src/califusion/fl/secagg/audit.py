"""Recompute a finished round from its signed transcript and event log.

Any member of a job can check that the result the aggregator published is the sum of the
committed masked inputs, with the published masks removed. :func:`audit_round` does it in the
open, with nothing secret: it replays the same pure server (``replay.py``) over the logged,
client-signed messages and compares. It reports, as :class:`Finding` s:

* ``transcript-signature``: the transcript is not signed by the aggregator's key;
* ``inconsistent-log``: the log served is not the one the transcript signs, or it does not
  replay (a message the server should have refused, or no result);
* ``tampered-input``: a commitment not signed by its client, or a logged masked input whose
  vector or signature does not match that client's signed commitment;
* ``dropped-committed-input``: a client whose committed masked input is not counted in the sum
  (left out of the contributors, marked dropped, or missing from the log);
* ``altered-sum``: the sum recomputed from the log differs from the transcript's or from the
  result that was served;
* ``survivor-set``: the transcript has no signed survivor set, its signatures do not certify it
  (forged, duplicated, over another set, or fewer than the consistency threshold), its
  survivors are not the contributors, or the round was unmasked by another set than the signed
  one (``consistency.py``).

What the auditor sees is what the aggregator saw (the server's view): masked inputs, revealed
shares of survivors' self masks and of dropped clients' mask keys. That reveals the sum and
nothing more, so a member may see it; in blind mode the sum stays padded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from califusion.core.errors import CaliFusionError
from califusion.fl.secagg.commitment import vector_digest
from califusion.fl.secagg.config import Stage
from califusion.fl.secagg.consistency import check_certificate
from califusion.fl.secagg.messages import (
    ConsistencySignature,
    masked_input_payload,
    survivor_view,
)
from califusion.fl.secagg.replay import Event, FetchVector, apply_event, log_digest
from califusion.fl.secagg.server import SecAggServer
from califusion.fl.secagg.transcript import Transcript, verify_transcript
from califusion.fl.secagg.wire import MaskedInputRef, decode_client

FindingKind = Literal[
    "transcript-signature",
    "inconsistent-log",
    "tampered-input",
    "dropped-committed-input",
    "altered-sum",
    "survivor-set",
]


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    detail: str
    client: int | None = None


@dataclass(frozen=True, slots=True)
class Audit:
    """The outcome: no findings means the published sum is the sum of the committed inputs."""

    findings: list[Finding] = field(default_factory=list)
    recomputed_digest: bytes | None = None

    @property
    def ok(self) -> bool:
        return not self.findings


def _public(raw: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(raw)


def audit_round(
    transcript: Transcript,
    signature: bytes,
    aggregator_key: Ed25519PublicKey,
    events: Sequence[Event],
    *,
    fetch: FetchVector,
    result: npt.NDArray[np.unsignedinteger[Any]] | None = None,
) -> Audit:
    """Check ``transcript`` against its ``events``; ``fetch`` must check blob digests itself."""
    findings: list[Finding] = []

    def report(kind: FindingKind, detail: str, client: int | None = None) -> None:
        findings.append(Finding(kind, detail, client))

    try:
        verify_transcript(transcript, signature, aggregator_key)
    except CaliFusionError:
        report("transcript-signature", "the transcript is not signed by the coordinator's key")
    if log_digest(events) != transcript.log_digest:
        report("inconsistent-log", "the event log served is not the one the transcript signs")

    config, label = transcript.config, transcript.labels
    identities = {pid: _public(transcript.identities[pid]) for pid in config.participants}
    committed = {c.client: c for c in transcript.commitments}
    for client, commitment in sorted(committed.items()):
        payload = masked_input_payload(
            transcript.round_id, client, config.dtype.str, config.dimension, commitment.digest
        )
        try:
            identities[client].verify(commitment.signature, payload)
        except (InvalidSignature, ValueError):
            report("tampered-input", f"{label[client]}'s commitment is not signed by it", client)
        if client not in transcript.contributors or client in transcript.dropped:
            report(
                "dropped-committed-input",
                f"{label[client]} committed a masked input that is not counted in the sum",
                client,
            )

    signed = transcript.consistency
    if signed is None:
        report("survivor-set", "the transcript carries no signed survivor set")
    else:
        view = survivor_view(signed.survivors, signed.dropped)
        try:
            check_certificate(
                config,
                transcript.round_id,
                signed.survivors,
                signed.dropped,
                [
                    ConsistencySignature(transcript.round_id, c, view, s)
                    for c, s in signed.signatures
                ],
                identities=identities,
            )
        except CaliFusionError as error:
            report("survivor-set", f"the signed survivor set is not certified: {error}")
        if signed.survivors != transcript.contributors:
            report("survivor-set", "the contributors are not the survivor set the clients signed")

    server = SecAggServer(config, transcript.round_id, identities, transcript.start)
    logged: set[int] = set()
    for event in events:
        try:
            message = None if event.is_tick else decode_client(event.body)
            if isinstance(message, MaskedInputRef):
                logged.add(message.sender)
                claimed = committed.get(message.sender)
                if claimed is None or claimed.digest != message.digest:
                    report(
                        "tampered-input",
                        f"the logged masked input of {label[message.sender]} is not the one "
                        f"it committed to",
                        message.sender,
                    )
                    continue
            apply_event(server, event, fetch)
        except CaliFusionError as error:
            if isinstance(message, MaskedInputRef):
                who = message.sender
                report("tampered-input", f"masked input of {label[who]}: {error}", who)
            else:
                report("inconsistent-log", f"the log does not replay: {error}")
    for client in sorted(set(committed) - logged):
        report(
            "dropped-committed-input",
            f"{label[client]}'s committed masked input is missing from the log",
            client,
        )
    if server.stage is not Stage.DONE:
        report("altered-sum", f"the logged messages do not produce a sum ({server.stage})")
        return Audit(findings)
    if signed is not None and server.survivor_set != (signed.survivors, signed.dropped):
        report(
            "survivor-set",
            "the round was unmasked by another survivor set than the one the clients signed",
        )
    recomputed = server.result
    digest = vector_digest(recomputed.total, config.commitment)
    for client in sorted((recomputed.contributors ^ transcript.contributors) & set(committed)):
        if client in recomputed.contributors:
            report("dropped-committed-input", f"{label[client]} is left out of the sum", client)
    if digest != transcript.result_digest:
        report("altered-sum", "the transcript's sum is not the sum of the committed inputs")
    if result is not None and vector_digest(result, config.commitment) != digest:
        report("altered-sum", "the sum served is not the sum of the committed inputs")
    return Audit(findings, digest)
