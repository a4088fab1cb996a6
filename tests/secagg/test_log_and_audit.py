"""Messages as bytes, a server rebuilt from its event log, and a round audited from it."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from califusion.core.errors import error_from_problem
from califusion.fl.secagg import (
    Event,
    MaskedInput,
    MaskedInputRef,
    ProtocolViolation,
    SecAggAborted,
    SecAggClient,
    SecAggConfig,
    SecAggServer,
    ServerMessage,
    Stage,
    Transcript,
    apply_event,
    audit_round,
    decode_client,
    decode_server,
    encode_client,
    encode_server,
    log_digest,
    replay,
    session_round_id,
    sign_transcript,
    vector_digest,
)
from califusion.fl.secagg.transcript import Commitment, SignedSurvivors

from .harness import identity, updates_for


class LoggedRound:
    """A round whose every server input goes through bytes and is logged, as the coordinator
    does; masked vectors live in a dict standing in for the blob store."""

    def __init__(self, n: int = 6, silent: tuple[int, ...] = (), legacy: bool = False) -> None:
        planned = SecAggConfig.plan(range(n), 40, clip=1.0, max_dropout=0.2)
        # rounds of the first protocol: SHA-256 commitments, AES-256-CTR masks
        self.config = (
            dataclasses.replace(planned, commitment="sha256", prg="aes256-ctr")
            if legacy
            else planned
        )
        commitment = self.config.commitment
        self.round_id = session_round_id("job-x", 1, 0)
        self.publics = {pid: identity(pid).public_key() for pid in self.config.participants}
        self.server = SecAggServer(self.config, self.round_id, self.publics, 0.0)
        updates = updates_for(self.config)
        self.clients = {
            pid: SecAggClient(
                self.config,
                self.round_id,
                pid,
                identity=identity(pid),
                peers=self.publics,
                update=updates[pid],
            )
            for pid in self.config.participants
        }
        self.blobs: dict[bytes, npt.NDArray[Any]] = {}
        self.events: list[Event] = []
        self.commitments: dict[int, Commitment] = {}
        self.now = 0.0
        out: list[ServerMessage] = []
        for pid, client in self.clients.items():
            if pid not in silent:
                out += self.send(encode_client(client.start()))
        while self.server.stage not in (Stage.DONE, Stage.ABORTED):
            if not out:
                self.now = self.server.deadline
                self.events.append(Event(self.now))
                out = apply_event(self.server, self.events[-1], self.fetch).out
                continue
            pending, out = out, []
            for message in pending:
                if message.recipient in silent:
                    continue
                decoded = decode_server(encode_server(message))
                assert decoded == message
                for reply in self.clients[message.recipient].handle(decoded):
                    if isinstance(reply, MaskedInput):
                        digest = vector_digest(reply.masked, commitment)
                        assert digest == self.clients[reply.sender].commitment
                        blob = hashlib.sha256(reply.masked.tobytes()).digest()
                        self.blobs[blob] = reply.masked
                        ref = MaskedInputRef.of(reply, digest=digest, blob=blob)
                        self.commitments[ref.sender] = Commitment(ref.sender, digest, ref.signature)
                        out += self.send(encode_client(ref))
                    else:
                        out += self.send(encode_client(reply))

    def fetch(self, ref: MaskedInputRef) -> npt.NDArray[Any]:
        return self.blobs[ref.blob]

    def send(self, body: bytes) -> list[ServerMessage]:
        self.events.append(Event(self.now, body))
        return apply_event(self.server, self.events[-1], self.fetch).out

    def transcript(self, key: Ed25519PrivateKey) -> tuple[Transcript, bytes]:
        result = self.server.result
        transcript = Transcript(
            session="job-x/round-1/attempt-0",
            mode="secure",
            round_id=self.round_id,
            config=self.config,
            start=0.0,
            labels=tuple(f"trainer-{pid}" for pid in self.config.participants),
            identities=tuple(
                identity(pid).public_key().public_bytes_raw() for pid in self.config.participants
            ),
            commitments=tuple(self.commitments.values()),
            contributors=result.contributors,
            dropped=result.dropped,
            result_digest=vector_digest(result.total, self.config.commitment),
            log_digest=log_digest(self.events),
            consistency=SignedSurvivors(
                *self.server.survivor_set,
                tuple((s.sender, s.signature) for s in self.server.consistency_signatures),
            ),
        )
        return transcript, sign_transcript(transcript, key)


def test_wire_rejects_truncated_trailing_and_unknown_bytes() -> None:
    rnd = LoggedRound()
    body = rnd.events[0].body
    assert encode_client(decode_client(body)) == body
    for broken in (body[:-1], body + b"\x00", b"\x09" + body[1:], b""):
        with pytest.raises(ProtocolViolation):
            decode_client(broken)
    huge_count = body[:1] + (10**6).to_bytes(4, "big") + body[5:]
    with pytest.raises(ProtocolViolation):
        decode_client(huge_count)


def test_replaying_the_log_rebuilds_the_server_exactly() -> None:
    rnd = LoggedRound(silent=(5,))
    rebuilt, outbox = replay(
        rnd.config, rnd.round_id, rnd.publics, 0.0, rnd.events, fetch=rnd.fetch
    )
    assert rebuilt.stage is Stage.DONE
    assert np.array_equal(rebuilt.result.total, rnd.server.result.total)
    assert rebuilt.result.contributors == rnd.server.result.contributors
    assert set(outbox) <= set(rnd.config.participants)
    # replaying a prefix and then the rest is the same as replaying everything
    half = len(rnd.events) // 2
    partial, _ = replay(
        rnd.config, rnd.round_id, rnd.publics, 0.0, rnd.events[:half], fetch=rnd.fetch
    )
    for event in rnd.events[half:]:
        apply_event(partial, event, rnd.fetch)
    assert np.array_equal(partial.result.total, rnd.server.result.total)


def test_an_honest_round_audits_clean_and_each_lie_is_named() -> None:
    rnd = LoggedRound(silent=(2,))
    key = Ed25519PrivateKey.generate()
    transcript, signature = rnd.transcript(key)
    public = key.public_key()
    total = rnd.server.result.total

    def audit(**changes: Any) -> set[str]:
        t = dataclasses.replace(transcript, **changes) if changes else transcript
        sig = sign_transcript(t, key) if changes else signature
        found = audit_round(t, sig, public, rnd.events, fetch=rnd.fetch, result=total)
        return {f.kind for f in found.findings}

    assert audit() == set()
    victim = min(transcript.contributors)
    assert "dropped-committed-input" in audit(
        contributors=transcript.contributors - {victim}, dropped=transcript.dropped | {victim}
    )
    assert "altered-sum" in audit(result_digest=hashlib.sha256(b"another sum").digest())
    forged = tuple(
        dataclasses.replace(c, digest=bytes(32)) if c.client == victim else c
        for c in transcript.commitments
    )
    assert "tampered-input" in audit(commitments=forged)
    assert audit_round(
        transcript, signature, Ed25519PrivateKey.generate().public_key(), rnd.events,
        fetch=rnd.fetch,
    ).findings[0].kind == "transcript-signature"  # fmt: skip
    other = total.copy()
    other[0] += 1
    served = audit_round(transcript, signature, public, rnd.events, fetch=rnd.fetch, result=other)
    assert [f.kind for f in served.findings] == ["altered-sum"]


def test_audit_names_a_survivor_set_the_clients_did_not_sign() -> None:
    """The transcript must carry the survivor set the clients signed, certified by enough of
    their signatures, and the logged round must have been unmasked by exactly that set."""
    rnd = LoggedRound(silent=(2,))
    key = Ed25519PrivateKey.generate()
    transcript, _ = rnd.transcript(key)
    signed = transcript.consistency
    assert signed is not None and 2 not in signed.survivors | signed.dropped
    assert len(signed.signatures) == 5 >= rnd.config.consistency_threshold

    def audit(consistency: SignedSurvivors | None) -> list[str]:
        t = dataclasses.replace(transcript, consistency=consistency)
        found = audit_round(
            t, sign_transcript(t, key), key.public_key(), rnd.events, fetch=rnd.fetch
        )
        return [f.detail for f in found.findings if f.kind == "survivor-set"]

    assert audit(signed) == []
    victim = max(signed.survivors)
    swapped = dataclasses.replace(
        signed, survivors=signed.survivors - {victim}, dropped=signed.dropped | {victim}
    )
    found = audit(swapped)
    # the signatures are over the true set, so over the swapped one they do not verify
    assert any("not certified" in d and "not signed by it" in d for d in found)
    assert any("unmasked by another survivor set" in d for d in found)
    few = dataclasses.replace(signed, signatures=signed.signatures[:3])
    assert any("only 3 clients signed" in d for d in audit(few))
    doubled = dataclasses.replace(signed, signatures=(*signed.signatures, signed.signatures[0]))
    assert any("appears twice" in d for d in audit(doubled))
    client = signed.signatures[0][0]
    forged = ((client, bytes(64)), *signed.signatures[1:])
    assert any(
        "not signed by it" in d for d in audit(dataclasses.replace(signed, signatures=forged))
    )
    assert audit(None) == ["the transcript carries no signed survivor set"]


def test_a_round_of_the_first_protocol_keeps_its_signed_form_and_audits_clean() -> None:
    """Rounds recorded before commitments moved to BLAKE3 and masks to the GCM keystream
    committed with SHA-256, masked with AES-256-CTR and logged references without a separate
    blob address; their transcripts still verify."""
    rnd = LoggedRound(silent=(2,), legacy=True)
    key = Ed25519PrivateKey.generate()
    transcript, _ = rnd.transcript(key)
    assert {"commitment", "prg"}.isdisjoint(transcript.to_dict()["config"])
    assert Transcript.from_json(transcript.canonical()) == transcript
    legacy_events = []
    for event in rnd.events:
        message = None if event.is_tick else decode_client(event.body)
        body = event.body
        if isinstance(message, MaskedInputRef):  # as kind 3 wrote it: no address field
            assert message.blob == message.digest
            body = b"\x03" + body[1 : -(4 + len(message.blob))]
            assert decode_client(body) == message
        legacy_events.append(Event(event.at, body))
    transcript = dataclasses.replace(transcript, log_digest=log_digest(legacy_events))
    found = audit_round(
        transcript,
        sign_transcript(transcript, key),
        key.public_key(),
        legacy_events,
        fetch=rnd.fetch,
        result=rnd.server.result.total,
    )
    assert found.ok, found.findings
    assert found.recomputed_digest == hashlib.sha256(rnd.server.result.total.tobytes()).digest()
    blake3_round = LoggedRound(silent=(2,))
    stored = blake3_round.config.to_dict()
    assert (stored["commitment"], stored["prg"]) == ("blake3", "aes256-gcm-keystream")
    # the same clients and sums give other commitments under the other hash
    assert {c.digest for c in blake3_round.commitments.values()}.isdisjoint(
        c.digest for c in rnd.commitments.values()
    )


def test_transcript_json_round_trip_is_canonical() -> None:
    rnd = LoggedRound()
    transcript, _ = rnd.transcript(Ed25519PrivateKey.generate())
    again = Transcript.from_json(transcript.canonical())
    assert again == transcript and again.canonical() == transcript.canonical()
    assert SecAggConfig.from_dict(rnd.config.to_dict()) == rnd.config


def test_round_ids_are_bound_to_job_round_and_attempt() -> None:
    ids = {session_round_id(j, r, a) for j in ("job-a", "job-b") for r in (1, 2) for a in (0, 1)}
    assert len(ids) == 8
    assert session_round_id("job-a", 1, 0) == session_round_id("job-a", 1, 0)


def test_an_abort_survives_the_trip_through_a_problem_body() -> None:
    aborted = SecAggAborted("unmask", "too few", remaining=2, required=3)
    rebuilt = error_from_problem(aborted.status, aborted.problem())
    assert isinstance(rebuilt, SecAggAborted)
    assert rebuilt.stage == "unmask" and str(rebuilt) == str(aborted)
