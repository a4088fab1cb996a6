"""Ed25519-signed HTTP requests, with a timestamp window and single-use nonces.

Every request to the coordinator carries four headers::

    X-CF-Principal   the signer's principal text
    X-CF-Timestamp   integer Unix seconds, decimal
    X-CF-Nonce       32 lowercase hex characters, random
    X-CF-Signature   unpadded base64url Ed25519 signature of the canonical message

The canonical message (UTF-8) is ``CALIFUSION-REQUEST-V1\\n`` followed by the upper-case method,
the path with its query string, the SHA-256 hex of the body, the timestamp, the nonce and the
principal, each on its own line (the last without a newline). ``path`` is exactly what goes on
the request line, e.g. httpx's ``request.url.raw_path.decode()``.

Verification order matters: principal ↔ key, timestamp window, signature, and only then the
nonce claim, so a forged request can never burn a legitimate client's nonce.
"""

from __future__ import annotations

import hashlib
import heapq
import hmac
import re
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from califusion.core.clock import Clock, SystemClock
from califusion.core.errors import (
    BadSignature,
    InvalidInput,
    ReplayedNonce,
    StaleRequest,
    UnknownPrincipal,
)
from califusion.crypto.encoding import b64d, b64e
from califusion.crypto.identity import SIGNATURE_BYTES, Identity, PublicIdentity
from califusion.crypto.principal import Principal

HEADER_PRINCIPAL = "X-CF-Principal"
HEADER_TIMESTAMP = "X-CF-Timestamp"
HEADER_NONCE = "X-CF-Nonce"
HEADER_SIGNATURE = "X-CF-Signature"
SIGNED_HEADERS = (HEADER_PRINCIPAL, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE)
REQUEST_PREFIX = b"CALIFUSION-REQUEST-V1\n"
DEFAULT_WINDOW_S = 60.0

_NONCE = re.compile(r"[0-9a-f]{32}")
_TIMESTAMP = re.compile(r"0|[1-9][0-9]{0,15}")
_METHOD = re.compile(r"[A-Z]{1,16}")


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """The authentication headers of a request, parsed but not yet verified."""

    principal: Principal
    timestamp: int
    nonce: str
    signature: bytes


def canonical_request(
    method: str, path: str, body: bytes, *, timestamp: int, nonce: str, principal: str
) -> bytes:
    """The exact bytes a request signature covers."""
    method = method.upper()
    if _METHOD.fullmatch(method) is None:
        raise InvalidInput(f"not an HTTP method: {method!r}")
    if not path.startswith("/") or any(c in path for c in "\r\n"):
        raise InvalidInput("a request path starts with '/' and has no line breaks")
    lines = (method, path, hashlib.sha256(body).hexdigest(), str(timestamp), nonce, principal)
    return REQUEST_PREFIX + "\n".join(lines).encode("utf-8")


def sign_request(  # noqa: PLR0917 - the signature agreed with the agent and coordinator
    identity: Identity,
    method: str,
    path: str,
    body: bytes,
    now: float,
    nonce: str | None = None,
) -> dict[str, str]:
    """The four authentication headers for a request sent at time ``now``."""
    if nonce is None:
        nonce = secrets.token_hex(16)
    elif _NONCE.fullmatch(nonce) is None:
        raise InvalidInput("a request nonce is 32 lowercase hex characters")
    timestamp = int(now)
    principal = identity.principal.to_text()
    message = canonical_request(
        method, path, body, timestamp=timestamp, nonce=nonce, principal=principal
    )
    return {
        HEADER_PRINCIPAL: principal,
        HEADER_TIMESTAMP: str(timestamp),
        HEADER_NONCE: nonce,
        HEADER_SIGNATURE: b64e(identity.sign(message)),
    }


def _lookup(headers: Mapping[str, str], wanted: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    lowered = {name.lower(): name for name in wanted}
    for key, value in headers.items():
        name = lowered.get(key.lower())
        if name is None:
            continue
        if name in found and found[name] != value:
            raise BadSignature(f"header {name} appears twice")
        found[name] = value
    return found


def parse_signed_headers(headers: Mapping[str, str]) -> SignedRequest:
    """Parse the authentication headers (case-insensitive); BadSignature names a bad header."""
    found = _lookup(headers, SIGNED_HEADERS)
    for name in SIGNED_HEADERS:
        if name not in found:
            raise BadSignature(f"missing header {name}")
    try:
        principal = Principal.from_text(found[HEADER_PRINCIPAL])
    except InvalidInput as exc:
        raise BadSignature(f"malformed header {HEADER_PRINCIPAL}") from exc
    if _TIMESTAMP.fullmatch(found[HEADER_TIMESTAMP]) is None:
        raise BadSignature(f"malformed header {HEADER_TIMESTAMP}: integer Unix seconds expected")
    if _NONCE.fullmatch(found[HEADER_NONCE]) is None:
        raise BadSignature(f"malformed header {HEADER_NONCE}: 32 lowercase hex characters expected")
    try:
        signature = b64d(found[HEADER_SIGNATURE])
    except InvalidInput as exc:
        raise BadSignature(f"malformed header {HEADER_SIGNATURE}") from exc
    if len(signature) != SIGNATURE_BYTES:
        raise BadSignature(f"malformed header {HEADER_SIGNATURE}: wrong length")
    return SignedRequest(principal, int(found[HEADER_TIMESTAMP]), found[HEADER_NONCE], signature)


class NonceStore(Protocol):
    """Remembers which (principal, nonce) pairs were used until they expire."""

    def claim(self, principal: str, nonce: str, expires_at: float) -> bool:
        """True if the pair was newly claimed, False if it was already seen and not expired."""
        ...


def verify_request(
    headers: Mapping[str, str],
    method: str,
    path: str,
    body: bytes,
    *,
    signing_public: bytes | None,
    now: float,
    nonces: NonceStore,
    window_s: float = DEFAULT_WINDOW_S,
) -> Principal:
    """Authenticate a request and return its principal; raise an AuthenticationError otherwise.

    ``signing_public`` is the registered Ed25519 key of ``parse_signed_headers(headers).principal``,
    or None when that principal has no registered key (UnknownPrincipal).
    """
    request = parse_signed_headers(headers)
    if signing_public is None:
        raise UnknownPrincipal(f"principal {request.principal} is not registered")
    expected = Principal.self_authenticating(signing_public)
    if not hmac.compare_digest(expected.raw, request.principal.raw):
        raise BadSignature(f"header {HEADER_PRINCIPAL} does not match the signing key")
    skew = now - request.timestamp
    if abs(skew) > window_s:
        raise StaleRequest(
            f"request timestamp is {skew:+.0f}s from server time, outside ±{window_s:.0f}s; "
            "check the client's clock"
        )
    principal_text = request.principal.to_text()
    try:
        message = canonical_request(
            method,
            path,
            body,
            timestamp=request.timestamp,
            nonce=request.nonce,
            principal=principal_text,
        )
    except InvalidInput as exc:
        raise BadSignature("request cannot be canonicalized") from exc
    # PublicIdentity.verify only uses the signing key; the agreement key is a placeholder.
    PublicIdentity(signing_public, bytes(32)).verify(request.signature, message)
    if not nonces.claim(principal_text, request.nonce, request.timestamp + window_s):
        raise ReplayedNonce(f"nonce {request.nonce} was already used")
    return request.principal


class MemoryNonceStore:
    """A thread-safe in-process NonceStore that forgets entries once they expire.

    ``clock`` must be the clock that supplies verify_request's ``now`` (pass the same FakeClock
    in tests): entries are forgotten once ``clock.now()`` passes their expiry.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._lock = threading.Lock()
        self._expiry: dict[tuple[str, str], float] = {}
        self._queue: list[tuple[float, str, str]] = []

    def claim(self, principal: str, nonce: str, expires_at: float) -> bool:
        with self._lock:
            self._prune(self._clock.now())
            key = (principal, nonce)
            if key in self._expiry:
                return False
            self._expiry[key] = expires_at
            heapq.heappush(self._queue, (expires_at, principal, nonce))
            return True

    def _prune(self, now: float) -> None:
        while self._queue and self._queue[0][0] < now:
            expires_at, principal, nonce = heapq.heappop(self._queue)
            if self._expiry.get((principal, nonce)) == expires_at:
                del self._expiry[(principal, nonce)]

    def __len__(self) -> int:
        with self._lock:
            return len(self._expiry)
