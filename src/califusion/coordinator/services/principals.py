"""Registering principals and authenticating signed requests."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping

from califusion.coordinator.db.engine import Database
from califusion.coordinator.db.models import PrincipalRow
from califusion.coordinator.db.nonces import DatabaseNonceStore
from califusion.coordinator.db.repositories import PrincipalRepository
from califusion.coordinator.views import principal_info
from califusion.core.clock import Clock
from califusion.core.errors import Conflict, NotFound
from califusion.crypto.encoding import b64d
from califusion.crypto.identity import PublicIdentity
from califusion.crypto.signing import parse_signed_headers, verify_request
from califusion.protocol.jobs import PrincipalInfo, RegisterPrincipal

log = logging.getLogger(__name__)


class PrincipalService:
    def __init__(self, db: Database, clock: Clock, *, window_s: float) -> None:
        self._db = db
        self._clock = clock
        self._window_s = window_s
        self.nonces = DatabaseNonceStore(db)

    def authenticate(self, headers: Mapping[str, str], method: str, path: str, body: bytes) -> str:
        """The registered principal that signed this request; AuthenticationError otherwise."""
        claimed = parse_signed_headers(headers).principal.to_text()
        with self._db.transaction() as session:
            row = PrincipalRepository(session).get(claimed)
            key = None if row is None else row.signing_public
        principal = verify_request(
            headers,
            method,
            path,
            body,
            signing_public=key,
            now=self._clock.now(),
            nonces=self.nonces,
            window_s=self._window_s,
        )
        return principal.to_text()

    def register(
        self,
        headers: Mapping[str, str],
        method: str,
        path: str,
        body: bytes,
        request: RegisterPrincipal,
    ) -> PrincipalInfo:
        """Register the keys in ``request``; the request must be signed by that signing key.
        Registering the same keys again returns the same record."""
        public = PublicIdentity(b64d(request.signing_public), b64d(request.agreement_public))
        principal = verify_request(
            headers,
            method,
            path,
            body,
            signing_public=public.signing_public,
            now=self._clock.now(),
            nonces=self.nonces,
            window_s=self._window_s,
        ).to_text()
        with self._db.transaction() as session:
            repo = PrincipalRepository(session)
            existing = repo.get(principal)
            if existing is not None:
                if not hmac.compare_digest(existing.agreement_public, public.agreement_public):
                    raise Conflict(
                        f"principal {principal} is registered with another agreement key; "
                        "keys cannot be replaced"
                    )
                return principal_info(existing)
            row = PrincipalRow(
                principal=principal,
                signing_public=public.signing_public,
                agreement_public=public.agreement_public,
                display_name=request.display_name,
                registered_at=self._clock.now(),
            )
            repo.add(row)
            log.info("principal registered", extra={"principal": principal})
            return principal_info(row)

    def get(self, principal: str) -> PrincipalInfo:
        with self._db.transaction() as session:
            row = PrincipalRepository(session).get(principal)
            if row is None:
                raise NotFound(f"principal {principal} is not registered")
            return principal_info(row)

    def prune_nonces(self) -> int:
        return self.nonces.prune(self._clock.now())
