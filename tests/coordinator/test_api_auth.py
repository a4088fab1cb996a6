"""Authentication over HTTP: registration, signatures, replays, stale requests."""

from __future__ import annotations

from pathlib import Path

import pytest

from califusion.coordinator import create_app
from califusion.core.clock import FakeClock
from califusion.core.settings import CoordinatorSettings
from califusion.crypto.encoding import b64e
from califusion.crypto.identity import Identity
from califusion.crypto.signing import HEADER_PRINCIPAL, sign_request

from .harness import SignedClient, running
from .scenario import assert_problem


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: authentication does not depend on the backend (nonces are covered on
    both backends by test_services)."""
    return f"sqlite:///{tmp_path / 'coordinator.db'}"


def test_unauthenticated_endpoints(api: SignedClient) -> None:
    assert api.get(None, "/health").json() == {"status": "ok"}
    assert api.get(None, "/openapi.json").json()["info"]["title"] == "CaliFusion coordinator"
    assert api.get(None, "/docs").status_code == 200


def test_every_v1_route_needs_a_signature(api: SignedClient) -> None:
    schema = api.get(None, "/openapi.json").json()
    for path, operations in schema["paths"].items():
        if not path.startswith("/v1/"):
            continue
        concrete = path.replace("{job_id}", "job-" + "0" * 32).replace("{number}", "1")
        concrete = concrete.replace("{digest}", "0" * 64).replace("{principal}", "aaaaa-aa")
        for method in operations:
            response = api.request(None, method.upper(), concrete, json_body={})
            assert_problem(response, 401, "bad-signature")


def test_register_and_look_up(api: SignedClient, publisher: Identity) -> None:
    info = api.register(publisher, "Alice")
    assert info["principal"] == publisher.principal.to_text()
    assert info["display_name"] == "Alice"
    assert api.register(publisher, "Alice") == info  # idempotent
    other = Identity.generate()
    api.register(other)
    looked_up = api.ok(api.get(other, f"/v1/principals/{info['principal']}"))
    assert looked_up == info
    missing = Identity.generate().principal.to_text()
    assert_problem(api.get(other, f"/v1/principals/{missing}"), 404, "not-found")


def test_registration_must_be_signed_by_the_registered_key(api: SignedClient) -> None:
    owner, impostor = Identity.generate(), Identity.generate()
    public = owner.public()
    body = {
        "signing_public": b64e(public.signing_public),
        "agreement_public": b64e(public.agreement_public),
    }
    assert_problem(api.post(impostor, "/v1/principals", body), 401, "bad-signature")
    api.register(owner)
    other_agreement = Identity.generate().public().agreement_public
    changed = body | {"agreement_public": b64e(other_agreement)}
    assert_problem(api.post(owner, "/v1/principals", changed), 409, "conflict")


def test_registration_rejects_malformed_keys(api: SignedClient) -> None:
    owner = Identity.generate()
    body = {
        "signing_public": b64e(owner.public().signing_public),
        "agreement_public": b64e(b"short"),
    }
    assert_problem(api.post(owner, "/v1/principals", body), 422, "invalid-input")


def test_unregistered_key_is_unknown_principal(api: SignedClient) -> None:
    stranger = Identity.generate()
    body = assert_problem(api.get(stranger, "/v1/jobs"), 401, "unknown-principal")
    assert stranger.principal.to_text() in str(body["detail"])


def test_tampered_body_is_a_bad_signature(api: SignedClient, publisher: Identity) -> None:
    api.register(publisher)
    signed = api.request(publisher, "PUT", "/v1/blobs", content=b"original")
    assert signed.status_code == 200
    headers = sign_request(publisher, "PUT", "/v1/blobs", b"original", api.clock.now())
    response = api.http.request("PUT", "/v1/blobs", content=b"tampered", headers=headers)
    assert_problem(response, 401, "bad-signature")


def test_signature_covers_the_query_string(api: SignedClient, publisher: Identity) -> None:
    api.register(publisher)
    headers = sign_request(publisher, "GET", "/v1/jobs", b"", api.clock.now())
    response = api.http.request("GET", "/v1/jobs?state=open", content=b"", headers=headers)
    assert_problem(response, 401, "bad-signature")
    assert api.ok(api.get(publisher, "/v1/jobs?state=open")) == []


def test_forged_principal_header(api: SignedClient, publisher: Identity) -> None:
    api.register(publisher)
    victim = Identity.generate()
    api.register(victim)
    headers = sign_request(publisher, "GET", "/v1/jobs", b"", api.clock.now())
    headers[HEADER_PRINCIPAL] = victim.principal.to_text()
    response = api.http.request("GET", "/v1/jobs", content=b"", headers=headers)
    assert_problem(response, 401, "bad-signature")


def test_replayed_nonce_is_refused(api: SignedClient, publisher: Identity) -> None:
    api.register(publisher)
    nonce = "ab" * 16
    assert api.request(publisher, "GET", "/v1/jobs", nonce=nonce).status_code == 200
    replay = api.request(publisher, "GET", "/v1/jobs", nonce=nonce)
    assert_problem(replay, 401, "replayed-nonce")


def test_replay_is_refused_after_a_restart(
    settings: CoordinatorSettings, clock: FakeClock, publisher: Identity
) -> None:
    nonce = "cd" * 16
    with running(create_app(settings, clock=clock), clock) as first:
        first.register(publisher)
        assert first.request(publisher, "GET", "/v1/jobs", nonce=nonce).status_code == 200
    with running(create_app(settings, clock=clock), clock) as second:
        replay = second.request(publisher, "GET", "/v1/jobs", nonce=nonce)
        assert_problem(replay, 401, "replayed-nonce")


@pytest.mark.parametrize("skew", [-61.0, 61.0])
def test_stale_timestamp_is_refused(api: SignedClient, publisher: Identity, skew: float) -> None:
    api.register(publisher)
    response = api.request(publisher, "GET", "/v1/jobs", signed_at=api.clock.now() + skew)
    assert_problem(response, 401, "stale-request")
    inside = api.request(publisher, "GET", "/v1/jobs", signed_at=api.clock.now() + skew / 2)
    assert inside.status_code == 200


def test_missing_headers(api: SignedClient) -> None:
    body = assert_problem(api.get(None, "/v1/jobs"), 401, "bad-signature")
    assert "missing header" in str(body["detail"])
