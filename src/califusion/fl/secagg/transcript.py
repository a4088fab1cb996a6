"""The signed transcript of a finished round: what the aggregator claims it did.

When a round ends the aggregator (the coordinator) signs, with its own Ed25519 key:

* which round: a session label (job, round, attempt), the round id and the mode, the round's
  parameters and start time, and the participants (label and Ed25519 key of client i at i);
* every masked input it accepted, as the client's signed commitment (the vector's digest under
  the round's commitment hash, ``commitment.py``, and the client's signature over it, see
  ``messages.masked_input_payload``);
* the contributors and the dropped clients, the digest of the resulting sum under the same
  hash (padded, in blind mode), and the digest of its event log (``replay.log_digest``);
* the survivor set of the consistency check (``consistency.py``) — U3 and U2 − U3, as every
  client was asked to sign them — with the survivors' signatures over it, so a verifier can
  check that a majority signed exactly the set the round was unmasked by.

Anyone holding the transcript and the log can recompute the round (``audit.py``). The encoding
is canonical JSON (sorted keys, no spaces, bytes as lowercase hex) behind a domain tag, so a
transcript has exactly one signed form.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from califusion.core.errors import BadSignature, InvalidInput
from califusion.fl.secagg.config import SecAggConfig
from califusion.fl.secagg.messages import Signer

_DOMAIN = b"califusion/secagg/transcript/v1\x00"


def session_label(job_id: str, number: int, attempt: int) -> str:
    """The name a transcript gives its round: which job, round and attempt."""
    return f"{job_id}/round-{number}/attempt-{attempt}"


@dataclass(frozen=True, slots=True)
class Commitment:
    """Client ``client``'s signed commitment to its masked input."""

    client: int
    digest: bytes
    signature: bytes


@dataclass(frozen=True, slots=True)
class SignedSurvivors:
    """The survivor set of the consistency check and the survivors' signatures over it
    (``signatures``: client → its signature over ``messages.survivor_view``)."""

    survivors: frozenset[int]
    dropped: frozenset[int]
    signatures: tuple[tuple[int, bytes], ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "survivors": sorted(self.survivors),
            "dropped": sorted(self.dropped),
            "signatures": [
                {"client": client, "signature": signature.hex()}
                for client, signature in sorted(self.signatures)
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SignedSurvivors:
        return cls(
            survivors=frozenset(int(c) for c in data["survivors"]),
            dropped=frozenset(int(c) for c in data["dropped"]),
            signatures=tuple(
                (int(s["client"]), bytes.fromhex(s["signature"])) for s in data["signatures"]
            ),
        )


@dataclass(frozen=True, slots=True)
class Transcript:
    session: str
    mode: str
    round_id: bytes
    config: SecAggConfig
    start: float
    labels: tuple[str, ...]
    identities: tuple[bytes, ...]
    commitments: tuple[Commitment, ...]
    contributors: frozenset[int]
    dropped: frozenset[int]
    result_digest: bytes
    log_digest: bytes
    consistency: SignedSurvivors | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "session": self.session,
            "mode": self.mode,
            "round_id": self.round_id.hex(),
            "config": self.config.to_dict(),
            "start": self.start,
            "participants": [
                {"label": label, "identity": key.hex()}
                for label, key in zip(self.labels, self.identities, strict=True)
            ],
            "commitments": [
                {"client": c.client, "digest": c.digest.hex(), "signature": c.signature.hex()}
                for c in sorted(self.commitments, key=lambda c: c.client)
            ],
            "contributors": sorted(self.contributors),
            "dropped": sorted(self.dropped),
            "result_digest": self.result_digest.hex(),
            "log_digest": self.log_digest.hex(),
        }
        if self.consistency is not None:  # absent from rounds before the consistency check
            data["consistency"] = self.consistency.to_dict()
        return data

    def canonical(self) -> bytes:
        """The one byte string that is signed."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Transcript:
        try:
            participants = data["participants"]
            return cls(
                session=str(data["session"]),
                mode=str(data["mode"]),
                round_id=bytes.fromhex(data["round_id"]),
                config=SecAggConfig.from_dict(data["config"]),
                start=float(data["start"]),
                labels=tuple(str(p["label"]) for p in participants),
                identities=tuple(bytes.fromhex(p["identity"]) for p in participants),
                commitments=tuple(
                    Commitment(
                        int(c["client"]), bytes.fromhex(c["digest"]), bytes.fromhex(c["signature"])
                    )
                    for c in data["commitments"]
                ),
                contributors=frozenset(int(c) for c in data["contributors"]),
                dropped=frozenset(int(c) for c in data["dropped"]),
                result_digest=bytes.fromhex(data["result_digest"]),
                log_digest=bytes.fromhex(data["log_digest"]),
                consistency=(
                    SignedSurvivors.from_dict(data["consistency"])
                    if data.get("consistency") is not None
                    else None
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"malformed round transcript: {exc}") from None

    @classmethod
    def from_json(cls, text: str | bytes) -> Transcript:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InvalidInput(f"round transcript is not JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidInput("round transcript is not a JSON object")
        return cls.from_dict(data)


def sign_transcript(transcript: Transcript, signer: Signer) -> bytes:
    return signer.sign(_DOMAIN + transcript.canonical())


def verify_transcript(transcript: Transcript, signature: bytes, key: Ed25519PublicKey) -> None:
    """Raise :class:`BadSignature` unless ``key`` signed exactly this transcript."""
    try:
        key.verify(signature, _DOMAIN + transcript.canonical())
    except (InvalidSignature, ValueError):
        raise BadSignature("the round transcript is not signed by the coordinator") from None
