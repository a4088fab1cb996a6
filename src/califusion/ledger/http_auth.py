"""Who is calling the ledger over HTTP: the principal whose key signed the request.

Ledger requests are signed exactly like coordinator requests (``crypto.signing``: method, path
with query, body hash, timestamp, nonce, principal) and carry one more header,
``X-CF-Public-Key``: the signer's raw Ed25519 public key, base64url. The principal is the
self-authenticating principal of that key — as on the Internet Computer, where a call carries
its sender's public key — so a ledger needs no registry of principals, and the caller of every
update is whoever holds the key; nobody can spend from an account they do not own.

Replays are refused with a nonce store. Inside the coordinator that is the coordinator's
database store (shared by all its workers, kept across restarts); a standalone ledger server,
one process by design, keeps nonces in memory and refuses requests signed before it started,
so a request captured before a restart cannot be replayed after it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from califusion.core.clock import Clock
from califusion.core.errors import BadSignature, InvalidInput, StaleRequest
from califusion.crypto.encoding import b64d, b64e
from califusion.crypto.identity import KEY_BYTES, Identity
from califusion.crypto.principal import Principal
from califusion.crypto.signing import (
    DEFAULT_WINDOW_S,
    HEADER_TIMESTAMP,
    MemoryNonceStore,
    NonceStore,
    verify_request,
)

HEADER_PUBLIC_KEY = "X-CF-Public-Key"


def public_key_header(identity: Identity) -> dict[str, str]:
    """The header that lets a ledger check ``identity``'s signatures."""
    return {HEADER_PUBLIC_KEY: b64e(identity.public().signing_public)}


def _public_key(headers: Mapping[str, str]) -> bytes:
    values = {v for k, v in headers.items() if k.lower() == HEADER_PUBLIC_KEY.lower()}
    if len(values) != 1:
        raise BadSignature(
            f"missing header {HEADER_PUBLIC_KEY}: ledger requests carry the signer's "
            "Ed25519 public key"
        )
    try:
        key = b64d(values.pop())
    except InvalidInput as exc:
        raise BadSignature(f"malformed header {HEADER_PUBLIC_KEY}") from exc
    if len(key) != KEY_BYTES:
        raise BadSignature(f"malformed header {HEADER_PUBLIC_KEY}: wrong length")
    return key


def _signed_at(headers: Mapping[str, str]) -> int:
    """The timestamp header, or -1 if it is absent or malformed (verify_request says why)."""
    text = next((v for k, v in headers.items() if k.lower() == HEADER_TIMESTAMP.lower()), "")
    return int(text) if text.isdigit() and len(text) <= 16 else -1


class SignedCallers:
    """Authenticates ledger requests; ``authenticate`` returns the caller or raises."""

    def __init__(
        self,
        nonces: NonceStore,
        clock: Clock,
        *,
        window_s: float = DEFAULT_WINDOW_S,
        not_before: int | None = None,
        blocking: bool = True,
    ) -> None:
        self._nonces = nonces
        self._clock = clock
        self._window_s = window_s
        self._not_before = not_before
        # Whether authenticating may block (a database nonce store): then it runs in a worker
        # thread, else right on the event loop (it is a signature check and a dict lookup).
        self.blocking = blocking

    @classmethod
    def in_memory(cls, clock: Clock, *, window_s: float = DEFAULT_WINDOW_S) -> SignedCallers:
        """Nonces in memory: for one server process, refusing requests signed before it."""
        return cls(
            MemoryNonceStore(clock),
            clock,
            window_s=window_s,
            not_before=math.floor(clock.now()),
            blocking=False,
        )

    def authenticate(
        self, headers: Mapping[str, str], method: str, path: str, body: bytes
    ) -> Principal:
        key = _public_key(headers)
        if self._not_before is not None and 0 <= _signed_at(headers) < self._not_before:
            raise StaleRequest(
                "the request was signed before this ledger server started; sign it again"
            )
        return verify_request(
            headers,
            method,
            path,
            body,
            signing_public=key,
            now=self._clock.now(),
            nonces=self._nonces,
            window_s=self._window_s,
        )
