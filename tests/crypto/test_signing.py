"""Signed requests: a known answer, every tampering, replay, staleness, header parsing."""

from __future__ import annotations

import threading

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from califusion.core.clock import FakeClock
from califusion.core.errors import (
    AuthenticationError,
    BadSignature,
    InvalidInput,
    ReplayedNonce,
    StaleRequest,
    UnknownPrincipal,
)
from califusion.crypto.encoding import b64d, b64e
from califusion.crypto.identity import Identity
from califusion.crypto.signing import (
    MemoryNonceStore,
    canonical_request,
    parse_signed_headers,
    sign_request,
    verify_request,
)

from .vectors import RFC8032_PUBLIC

NOW = 1_750_000_000.0
NONCE = "00112233445566778899aabbccddeeff"
PATH = "/v1/jobs/job-1/rounds/3?wait=1"
BODY = b'{"hello": "world"}'
RFC8032_PRINCIPAL = "e73il-iz5tp-nkgt7-idxyw-ngkah-47bpv-qdase-pzde6-g6vwc-a3eql-jae"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


@pytest.fixture
def nonces(clock: FakeClock) -> MemoryNonceStore:
    return MemoryNonceStore(clock)


def _verify(
    headers: dict[str, str],
    identity: Identity,
    nonces: MemoryNonceStore,
    *,
    method: str = "POST",
    path: str = PATH,
    body: bytes = BODY,
    now: float = NOW,
) -> str:
    principal = verify_request(
        headers,
        method,
        path,
        body,
        signing_public=identity.public().signing_public,
        now=now,
        nonces=nonces,
    )
    return principal.to_text()


def test_known_answer(rfc_identity: Identity) -> None:
    headers = sign_request(rfc_identity, "post", PATH, BODY, NOW + 0.9, nonce=NONCE)
    expected_message = (
        b"CALIFUSION-REQUEST-V1\nPOST\n/v1/jobs/job-1/rounds/3?wait=1\n"
        b"5f8f04f6a3a892aaabbddb6cf273894493773960d4a325b105fee46eef4304f1\n"
        b"1750000000\n00112233445566778899aabbccddeeff\n" + RFC8032_PRINCIPAL.encode()
    )
    message = canonical_request(
        "POST", PATH, BODY, timestamp=1_750_000_000, nonce=NONCE, principal=RFC8032_PRINCIPAL
    )
    assert message == expected_message
    assert headers["X-CF-Principal"] == RFC8032_PRINCIPAL
    assert headers["X-CF-Timestamp"] == "1750000000"
    assert headers["X-CF-Nonce"] == NONCE
    # Ed25519 is deterministic: the signature is a fixed function of the RFC 8032 key.
    signature = b64d(headers["X-CF-Signature"])
    Ed25519PublicKey.from_public_bytes(RFC8032_PUBLIC).verify(signature, expected_message)
    assert signature == rfc_identity.sign(expected_message)


def test_round_trip(rfc_identity: Identity, nonces: MemoryNonceStore) -> None:
    headers = sign_request(rfc_identity, "POST", PATH, BODY, NOW)
    assert _verify(headers, rfc_identity, nonces) == RFC8032_PRINCIPAL


def test_random_nonces_are_32_lowercase_hex(rfc_identity: Identity) -> None:
    seen = {sign_request(rfc_identity, "GET", "/", b"", NOW)["X-CF-Nonce"] for _ in range(8)}
    assert len(seen) == 8
    assert all(len(n) == 32 and n == n.lower() and int(n, 16) >= 0 for n in seen)


def test_header_names_are_case_insensitive(
    rfc_identity: Identity, nonces: MemoryNonceStore
) -> None:
    headers = sign_request(rfc_identity, "POST", PATH, BODY, NOW)
    lowered = {k.lower(): v for k, v in headers.items()}
    assert _verify(lowered, rfc_identity, nonces) == RFC8032_PRINCIPAL


def test_method_case_is_normalized(rfc_identity: Identity, nonces: MemoryNonceStore) -> None:
    headers = sign_request(rfc_identity, "post", PATH, BODY, NOW)
    assert _verify(headers, rfc_identity, nonces, method="POST") == RFC8032_PRINCIPAL


def test_replayed_nonce(rfc_identity: Identity, nonces: MemoryNonceStore) -> None:
    headers = sign_request(rfc_identity, "POST", PATH, BODY, NOW)
    _verify(headers, rfc_identity, nonces)
    with pytest.raises(ReplayedNonce):
        _verify(headers, rfc_identity, nonces, now=NOW + 30)


def test_same_nonce_for_another_principal_is_fine(nonces: MemoryNonceStore) -> None:
    alice, bob = Identity.generate(), Identity.generate()
    _verify(sign_request(alice, "POST", PATH, BODY, NOW, nonce=NONCE), alice, nonces)
    _verify(sign_request(bob, "POST", PATH, BODY, NOW, nonce=NONCE), bob, nonces)


@pytest.mark.parametrize("offset", [-61.0, -3600.0, 61.0, 3600.0])
def test_stale_timestamp(rfc_identity: Identity, nonces: MemoryNonceStore, offset: float) -> None:
    headers = sign_request(rfc_identity, "POST", PATH, BODY, NOW + offset)
    with pytest.raises(StaleRequest):
        _verify(headers, rfc_identity, nonces)
    assert len(nonces) == 0


@pytest.mark.parametrize("offset", [-60.0, 60.0])
def test_window_edges_are_accepted(
    rfc_identity: Identity, nonces: MemoryNonceStore, offset: float
) -> None:
    headers = sign_request(rfc_identity, "POST", PATH, BODY, NOW + offset)
    assert _verify(headers, rfc_identity, nonces) == RFC8032_PRINCIPAL


@pytest.mark.parametrize(
    "change",
    [
        {"method": "PUT"},
        {"path": "/v1/jobs/job-1/rounds/4?wait=1"},
        {"path": "/v1/jobs/job-1/rounds/3?wait=2"},
        {"path": "/v1/jobs/job-1/rounds/3"},
        {"body": BODY + b" "},
        {"body": b""},
    ],
    ids=["method", "path", "query", "query-dropped", "body", "empty-body"],
)
def test_tampered_request(
    rfc_identity: Identity, nonces: MemoryNonceStore, change: dict[str, object]
) -> None:
    headers = sign_request(rfc_identity, "POST", PATH, BODY, NOW)
    with pytest.raises(BadSignature):
        _verify(headers, rfc_identity, nonces, **change)  # type: ignore[arg-type]


@pytest.mark.parametrize("header", ["X-CF-Timestamp", "X-CF-Nonce"])
def test_tampered_signed_header(
    rfc_identity: Identity, nonces: MemoryNonceStore, header: str
) -> None:
    headers = sign_request(rfc_identity, "POST", PATH, BODY, NOW, nonce=NONCE)
    headers[header] = "1750000001" if header == "X-CF-Timestamp" else NONCE[::-1]
    with pytest.raises(BadSignature):
        _verify(headers, rfc_identity, nonces)


def test_forged_request_does_not_burn_the_nonce(
    rfc_identity: Identity, nonces: MemoryNonceStore
) -> None:
    genuine = sign_request(rfc_identity, "POST", PATH, BODY, NOW, nonce=NONCE)
    forged = dict(genuine, **{"X-CF-Signature": b64e(bytes(64))})
    with pytest.raises(BadSignature):
        _verify(forged, rfc_identity, nonces)
    assert _verify(genuine, rfc_identity, nonces) == RFC8032_PRINCIPAL


def test_principal_not_matching_the_key(rfc_identity: Identity, nonces: MemoryNonceStore) -> None:
    mallory = Identity.generate()
    # Mallory's own request, checked against the key registered for another principal.
    with pytest.raises(BadSignature, match="X-CF-Principal"):
        _verify(sign_request(mallory, "POST", PATH, BODY, NOW), rfc_identity, nonces)
    # Mallory claims the victim's principal: the victim's key does not verify her signature.
    headers = sign_request(mallory, "POST", PATH, BODY, NOW)
    headers["X-CF-Principal"] = RFC8032_PRINCIPAL
    with pytest.raises(BadSignature, match="signature"):
        _verify(headers, rfc_identity, nonces)
    assert len(nonces) == 0


def test_unregistered_principal(rfc_identity: Identity, nonces: MemoryNonceStore) -> None:
    headers = sign_request(rfc_identity, "POST", PATH, BODY, NOW)
    with pytest.raises(UnknownPrincipal, match=RFC8032_PRINCIPAL):
        verify_request(headers, "POST", PATH, BODY, signing_public=None, now=NOW, nonces=nonces)


@pytest.mark.parametrize(
    "header", ["X-CF-Principal", "X-CF-Timestamp", "X-CF-Nonce", "X-CF-Signature"]
)
def test_missing_header_is_named(rfc_identity: Identity, header: str) -> None:
    headers = sign_request(rfc_identity, "POST", PATH, BODY, NOW)
    del headers[header]
    with pytest.raises(BadSignature, match=header):
        parse_signed_headers(headers)


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-CF-Principal", "not a principal"),
        ("X-CF-Principal", "aaaaa-ab"),
        ("X-CF-Timestamp", "-5"),
        ("X-CF-Timestamp", "1.5"),
        ("X-CF-Timestamp", "0175"),
        ("X-CF-Timestamp", " 175"),
        ("X-CF-Timestamp", "1" * 20),
        ("X-CF-Nonce", NONCE.upper()),
        ("X-CF-Nonce", NONCE[:-1]),
        ("X-CF-Nonce", NONCE + "0"),
        ("X-CF-Signature", "****"),
        ("X-CF-Signature", b64e(bytes(63))),
        ("X-CF-Signature", b64e(bytes(64)) + "=="),
    ],
)
def test_malformed_header_is_named(rfc_identity: Identity, header: str, value: str) -> None:
    headers = sign_request(rfc_identity, "POST", PATH, BODY, NOW)
    headers[header] = value
    with pytest.raises(BadSignature, match=header):
        parse_signed_headers(headers)


def test_conflicting_duplicate_headers(rfc_identity: Identity) -> None:
    headers = sign_request(rfc_identity, "POST", PATH, BODY, NOW)
    headers["x-cf-nonce"] = NONCE
    with pytest.raises(BadSignature, match="X-CF-Nonce"):
        parse_signed_headers(headers)


def test_parse_returns_fields(rfc_identity: Identity) -> None:
    headers = sign_request(rfc_identity, "GET", "/", b"", NOW, nonce=NONCE)
    parsed = parse_signed_headers(headers)
    assert parsed.principal == rfc_identity.principal
    assert (parsed.timestamp, parsed.nonce) == (1_750_000_000, NONCE)
    assert len(parsed.signature) == 64


@pytest.mark.parametrize(
    ("method", "path", "nonce"),
    [("GET", "no-slash", None), ("GE T", "/", None), ("GET", "/a\nb", None), ("GET", "/", "xyz")],
)
def test_sign_request_rejects_bad_input(
    rfc_identity: Identity, method: str, path: str, nonce: str | None
) -> None:
    with pytest.raises(InvalidInput):
        sign_request(rfc_identity, method, path, b"", NOW, nonce=nonce)


def test_unsignable_request_line_is_rejected(
    rfc_identity: Identity, nonces: MemoryNonceStore
) -> None:
    headers = sign_request(rfc_identity, "GET", "/", b"", NOW)
    with pytest.raises(AuthenticationError):
        _verify(headers, rfc_identity, nonces, method="GET", path="/\n")


def test_memory_nonce_store_expires_entries(clock: FakeClock, nonces: MemoryNonceStore) -> None:
    assert nonces.claim("p", NONCE, NOW + 60)
    assert not nonces.claim("p", NONCE, NOW + 60)
    clock.advance(60)
    assert not nonces.claim("p", NONCE, NOW + 120)  # expiry is inclusive
    clock.advance(0.5)
    assert nonces.claim("q", NONCE, NOW + 120)
    assert len(nonces) == 1  # ("p", NONCE) was pruned
    assert nonces.claim("p", NONCE, NOW + 120)


def test_memory_nonce_store_is_thread_safe(nonces: MemoryNonceStore) -> None:
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def claim() -> None:
        barrier.wait()
        results.append(nonces.claim("p", NONCE, NOW + 60))

    threads = [threading.Thread(target=claim) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
