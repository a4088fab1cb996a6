"""Check a securely aggregated round from the outside: ``califusion job verify``.

Any member (the publisher or an admitted trainer) fetches the coordinator's public key, the
round's signed transcript and event log, every committed masked vector and the result the
coordinator serves, and recomputes the round with ``fl.secagg.audit_round``. Blobs are checked
against their digests here, never trusted to the coordinator's store. The report names each
problem: a tampered input, a committed input left out of the sum, an altered sum, a survivor
set the trainers did not sign (or not the one the round was unmasked by), or a transcript or
log the coordinator did not sign.

The coordinator's key is taken from ``/v1/coordinator`` unless the caller pins one
(``expected_key``): pin it when the coordinator itself is the party being checked.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from califusion.agent.client import CoordinatorClient
from califusion.core.errors import CaliFusionError, InvalidInput
from califusion.crypto.encoding import b64d
from califusion.crypto.principal import Principal
from califusion.fl.secagg import (
    Audit,
    Event,
    Finding,
    MaskedInputRef,
    Transcript,
    audit_round,
    session_round_id,
)
from califusion.fl.secagg.transcript import Commitment, session_label


@dataclass(frozen=True)
class RoundVerification:
    job_id: str
    number: int
    attempt: int
    mode: str
    contributors: list[str]
    dropped: list[str]
    commitments: list[Commitment]
    audit: Audit

    @property
    def ok(self) -> bool:
        return self.audit.ok


def fetch_checked(client: CoordinatorClient, digest: bytes) -> bytes:
    """A blob's bytes, refused unless they hash to ``digest`` (its SHA-256 address); the audit
    then checks each masked vector against its client's signed commitment."""
    data = client.get_blob(digest.hex())
    if not hmac.compare_digest(hashlib.sha256(data).digest(), digest):
        raise InvalidInput(f"blob {digest.hex()} served by the coordinator does not match it")
    return data


def verify_round(
    client: CoordinatorClient, job_id: str, number: int, *, expected_key: bytes | None = None
) -> RoundVerification:
    """Recompute round ``number`` of ``job_id`` from the coordinator's signed record of it."""
    info = client.coordinator_info()
    key_bytes = b64d(info.signing_public)
    if expected_key is not None and not hmac.compare_digest(key_bytes, expected_key):
        raise InvalidInput("the coordinator's key is not the one expected; refusing to trust it")
    if Principal.self_authenticating(key_bytes).to_text() != info.principal:
        raise InvalidInput("the coordinator's principal does not match its key")
    coordinator_key = Ed25519PublicKey.from_public_bytes(key_bytes)
    session = client.secagg_session(job_id, number)
    evidence = client.secagg_evidence(job_id, number)
    transcript = Transcript.from_json(evidence.transcript)
    events = [Event(e.at, b64d(e.body)) for e in evidence.events]
    dtype = transcript.config.dtype

    def fetch(ref: MaskedInputRef) -> npt.NDArray[np.unsignedinteger[Any]]:
        return np.frombuffer(fetch_checked(client, ref.blob), dtype=dtype)

    result = None
    early: list[Finding] = []
    attempt = session.attempt
    bound = session_round_id(job_id, number, attempt)
    if transcript.session != session_label(job_id, number, attempt) or (
        transcript.round_id != bound
    ):
        early.append(Finding("inconsistent-log", "the transcript is for another round"))
    if session.result is None:
        early.append(Finding("altered-sum", "the coordinator serves no result for this round"))
    else:
        try:
            result = np.frombuffer(
                fetch_checked(client, bytes.fromhex(session.result)), dtype=dtype
            )
        except CaliFusionError as error:
            early.append(Finding("altered-sum", f"the result cannot be fetched: {error}"))
    audit = audit_round(
        transcript, b64d(evidence.signature), coordinator_key, events, fetch=fetch, result=result
    )
    labels = transcript.labels
    return RoundVerification(
        job_id=job_id,
        number=number,
        attempt=session.attempt,
        mode=transcript.mode,
        contributors=[labels[c] for c in sorted(transcript.contributors)],
        dropped=[labels[c] for c in sorted(transcript.dropped)],
        commitments=list(transcript.commitments),
        audit=Audit(early + audit.findings, audit.recomputed_digest),
    )
