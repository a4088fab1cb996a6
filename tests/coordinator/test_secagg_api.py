"""A SecAgg+ round through the coordinator's HTTP API, with in-process clients and a fake clock.

Covers what the end-to-end tests cannot reach cheaply: several coordinator workers sharing one
database (each rebuilding the session from the event log as it goes), who may post and read
what, replayed and late messages, an abort that retries the round, and the data migration of
jobs created before secure aggregation existed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from califusion.coordinator import create_app
from califusion.coordinator.db import Database, make_engine, upgrade_database
from califusion.coordinator.db.migrate import alembic_config
from califusion.core.clock import FakeClock
from califusion.core.settings import CoordinatorSettings
from califusion.crypto.encoding import b64d, b64e
from califusion.crypto.identity import Identity
from califusion.fl.secagg import (
    MaskedInput,
    MaskedInputRef,
    SecAggClient,
    SecAggConfig,
    Transcript,
    WireClientMessage,
    decode_server,
    encode_client,
    vector_digest,
)
from califusion.protocol import SecAggInbox, SecAggSession

from .harness import SignedClient, running
from .scenario import Scenario, assert_problem


@pytest.fixture
def workers(settings: CoordinatorSettings, clock: FakeClock) -> Iterator[list[SignedClient]]:
    """Two coordinator apps on one database: two workers behind one load balancer."""
    with ExitStack() as stack:
        yield [
            stack.enter_context(running(create_app(settings, clock=clock), clock)) for _ in range(2)
        ]


class Round:
    """Trainers driving SecAggClients through the API; request i goes to worker i % 2."""

    def __init__(self, scenario: Scenario, workers: list[SignedClient], number: int = 1) -> None:
        self.s, self.workers, self.number = scenario, workers, number
        self.calls = 0
        self.base = f"{scenario.path}/rounds/{number}/secagg"
        first = scenario.trainers[0]
        self.session = SecAggSession.model_validate(self.get(first, self.base))
        self.config = SecAggConfig.from_dict(self.session.config)
        self.client_of = {p.principal: p.client for p in self.session.participants}
        rng = np.random.default_rng(number)
        self.updates = {
            t.principal.to_text(): rng.normal(0, 0.5, self.config.dimension)
            for t in scenario.trainers
        }
        self.clients = {
            t.principal.to_text(): SecAggClient(
                self.config,
                b64d(self.session.round_id),
                self.client_of[t.principal.to_text()],
                identity=t,
                peers={
                    p.client: _public(b64d(p.signing_public)) for p in self.session.participants
                },
                update=self.updates[t.principal.to_text()],
            )
            for t in scenario.trainers
        }
        self.handled = dict.fromkeys(self.clients, 0)

    def api(self) -> SignedClient:
        self.calls += 1
        return self.workers[self.calls % len(self.workers)]

    def get(self, who: Identity, path: str) -> Any:
        return self.api().ok(self.api().get(who, path))

    def post(self, who: Identity, message: WireClientMessage | MaskedInput) -> SecAggInbox:
        if isinstance(message, MaskedInput):
            blob = self.api().put_blob(who, message.masked.tobytes())
            digest = vector_digest(message.masked, self.config.commitment)
            message = MaskedInputRef.of(message, digest=digest, blob=bytes.fromhex(blob))
        body = {"attempt": self.session.attempt, "message": b64e(encode_client(message))}
        response = self.api().post(who, f"{self.base}/messages", body)
        return SecAggInbox.model_validate(self.api().ok(response))

    def inbox(self, who: Identity) -> SecAggInbox:
        path = f"{self.base}/inbox?attempt={self.session.attempt}"
        return SecAggInbox.model_validate(self.get(who, path))

    def step(self, who: Identity) -> None:
        """Answer every new server message of ``who``."""
        me = who.principal.to_text()
        inbox = self.inbox(who)
        for raw in inbox.messages[self.handled[me] :]:
            self.handled[me] += 1
            for reply in self.clients[me].handle(decode_server(b64d(raw))):
                self.post(who, reply)

    def expected_total(self, contributors: list[str]) -> np.ndarray:
        total = np.zeros(self.config.dimension, dtype=self.config.dtype)
        for me in contributors:
            total += self.config.quantizer.quantize(self.updates[me])
        return total


def _public(raw: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(raw)


def _secure_scenario(
    api: SignedClient, database_url: str, trainers: int = 4, **spec: Any
) -> Scenario:
    publisher = Identity.generate()
    team = [Identity.generate() for _ in range(trainers)]
    settings = {"aggregation_mode": "secure", "min_trainers_per_round": 3}
    settings |= {"trainers_wanted": trainers, "round_deadline_seconds": 70.0, **spec}
    scenario = Scenario(api, database_url, publisher, team, **settings)
    scenario.start_with(trainers)
    return scenario


def test_a_round_across_two_workers_with_a_dropout(
    workers: list[SignedClient], database_url: str, clock: FakeClock
) -> None:
    s = _secure_scenario(workers[0], database_url)
    try:
        r = Round(s, workers)
        for trainer in s.trainers:
            r.post(trainer, r.clients[trainer.principal.to_text()].start())
        for trainer in s.trainers:  # share keys
            r.step(trainer)
        for trainer in s.trainers[:3]:  # masked inputs; trainer 3 falls silent
            r.step(trainer)
        clock.advance(r.config.stage_timeout + 1)
        for trainer in s.trainers[:3]:  # the deadline applies: sign the survivor set
            r.step(trainer)
        for trainer in s.trainers[:3]:  # unmask, with the signatures
            r.step(trainer)
        done = SecAggSession.model_validate(r.get(s.publisher, r.base))
        survivors = [t.principal.to_text() for t in s.trainers[:3]]
        assert done.stage == "done"
        assert sorted(done.contributors) == sorted(r.client_of[m] for m in survivors)
        assert done.result is not None
        total = np.frombuffer(r.api().get(s.publisher, f"/v1/blobs/{done.result}").content, "<u4")
        assert np.array_equal(total, r.expected_total(survivors))
        assert s.current_round()["state"] == "aggregating"
        assert s.current_round()["updates_received"] == 3
        evidence = r.get(s.trainers[0], f"{r.base}/evidence")
        assert len(evidence["events"]) > 5 * 3
        transcript = Transcript.from_json(evidence["transcript"])
        assert transcript.consistency is not None
        assert transcript.consistency.survivors == set(done.contributors)
        assert len(transcript.consistency.signatures) == 3
    finally:
        s.close()


def test_trainers_post_only_as_themselves_and_read_only_their_inbox(
    api: SignedClient, database_url: str
) -> None:
    s = _secure_scenario(api, database_url)
    try:
        r = Round(s, [api])
        mine, theirs = s.trainers[0], s.trainers[1]
        advertised = r.clients[theirs.principal.to_text()].start()
        body = {"attempt": 0, "message": b64e(encode_client(advertised))}
        assert_problem(api.post(mine, f"{r.base}/messages", body), 403, "forbidden")
        stranger = Identity.generate()
        api.register(stranger)
        assert_problem(api.get(stranger, f"{r.base}/inbox?attempt=0"), 403, "forbidden")
        assert_problem(api.get(stranger, r.base), 403, "forbidden")
        assert_problem(api.get(stranger, f"{r.base}/evidence"), 403, "forbidden")
        r.post(theirs, advertised)
        again = api.post(theirs, f"{r.base}/messages", body)
        assert_problem(again, 401, "secagg-duplicate")
        assert r.inbox(mine).messages == []
    finally:
        s.close()


def test_a_masked_input_names_an_uploaded_blob_that_holds_the_signed_vector(
    api: SignedClient, database_url: str
) -> None:
    """A reference to a blob never uploaded, or to another vector than the one the trainer
    signed, is refused and changes nothing: the genuine one is still taken afterwards."""
    s = _secure_scenario(api, database_url)
    try:
        r = Round(s, [api])
        for trainer in s.trainers:
            r.post(trainer, r.clients[trainer.principal.to_text()].start())
        for trainer in s.trainers:  # share keys
            r.step(trainer)
        first = s.trainers[0]
        me = first.principal.to_text()
        [masked] = r.clients[me].handle(decode_server(b64d(r.inbox(first).messages[-1])))
        r.handled[me] += 1
        assert isinstance(masked, MaskedInput)
        digest = vector_digest(masked.masked, r.config.commitment)

        def post(ref: MaskedInputRef) -> Any:
            body = {"attempt": 0, "message": b64e(encode_client(ref))}
            return api.post(first, f"{r.base}/messages", body)

        never_uploaded = MaskedInputRef.of(masked, digest=digest, blob=bytes(32))
        problem = assert_problem(post(never_uploaded), 422, "invalid-input")
        assert "upload it first" in problem["detail"]
        other = masked.masked.copy()
        other[0] += 1
        swapped = bytes.fromhex(api.put_blob(first, other.tobytes()))
        assert_problem(
            post(MaskedInputRef.of(masked, digest=digest, blob=swapped)), 401, "bad-signature"
        )
        relabelled = MaskedInputRef.of(
            masked, digest=vector_digest(other, r.config.commitment), blob=swapped
        )
        assert_problem(post(relabelled), 401, "bad-signature")
        session = SecAggSession.model_validate(r.get(first, r.base))
        assert session.stage == "masked-input"
        r.post(first, masked)
        for trainer in s.trainers[1:]:
            r.step(trainer)
        for trainer in s.trainers:  # sign the survivor set, then unmask
            r.step(trainer)
        for trainer in s.trainers:
            r.step(trainer)
        done = SecAggSession.model_validate(r.get(first, r.base))
        assert done.stage == "done" and len(done.contributors) == len(s.trainers)
    finally:
        s.close()


def test_too_few_trainers_abort_and_the_round_is_retried(
    api: SignedClient, database_url: str, clock: FakeClock
) -> None:
    s = _secure_scenario(api, database_url)
    try:
        r = Round(s, [api])
        for trainer in s.trainers[:2]:
            r.post(trainer, r.clients[trainer.principal.to_text()].start())
        clock.advance(3 * r.config.stage_timeout + 1)
        inbox = r.inbox(s.trainers[0])
        assert inbox.stage == "aborted" and "at least 3 needed" in inbox.abort_reason
        assert inbox.messages == []
        current = s.current_round()
        assert (current["attempt"], current["state"]) == (1, "collecting")
        late = r.clients[s.trainers[2].principal.to_text()].start()
        body = {"attempt": 0, "message": b64e(encode_client(late))}
        assert_problem(api.post(s.trainers[2], f"{r.base}/messages", body), 409, "conflict")
        fresh = SecAggSession.model_validate(api.ok(api.get(s.trainers[0], r.base)))
        assert fresh.attempt == 1 and fresh.round_id != r.session.round_id
    finally:
        s.close()


def test_modes_keep_to_their_own_routes(api: SignedClient, database_url: str) -> None:
    secure = _secure_scenario(api, database_url)
    try:
        assert_problem(secure.submit(secure.trainers[0], 1), 409, "conflict")
    finally:
        secure.close()
    plain = Scenario(
        api, database_url, Identity.generate(), [Identity.generate()], min_trainers_per_round=1
    )
    try:
        plain.start_with(1)
        path = f"{plain.path}/rounds/1/secagg"
        assert_problem(api.get(plain.trainers[0], path), 409, "conflict")
    finally:
        plain.close()


def test_coordinator_key_is_served(api: SignedClient, settings: CoordinatorSettings) -> None:
    me = Identity.generate()
    api.register(me)
    info = api.ok(api.get(me, "/v1/coordinator"))
    assert settings.identity_file.exists()
    assert oct(settings.identity_file.stat().st_mode & 0o777) == "0o600"
    assert len(b64d(info["signing_public"])) == 32


def test_jobs_from_before_secure_aggregation_stay_publisher_aggregated(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, "0001")
            connection.execute(
                sa.text("INSERT INTO principals VALUES ('aaaaa-aa', :k, :k, 'p', 0)"),
                {"k": bytes(32)},
            )
            connection.execute(
                sa.text(
                    "INSERT INTO jobs VALUES ('job-old', 'aaaaa-aa', :k, :spec, 'open', '', 0, 0, "
                    "0, :d, NULL, 1)"
                ),
                {"k": bytes(32), "spec": '{"title": "old"}', "d": "0" * 64},
            )
    finally:
        engine.dispose()
    upgrade_database(url)
    db = Database(url)
    try:
        with db.transaction() as session:
            spec = session.execute(sa.text("SELECT spec FROM jobs")).scalar_one()
    finally:
        db.dispose()
    assert '"aggregation_mode": "publisher"' in spec or '"aggregation_mode":"publisher"' in spec
