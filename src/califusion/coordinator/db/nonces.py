"""Request nonces in the database, so a replay is caught across restarts and across workers."""

from __future__ import annotations

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from califusion.coordinator.db.engine import Database
from califusion.coordinator.db.models import NonceRow
from califusion.core.errors import BadSignature

MAX_NONCE_CHARS = 128
MAX_PRINCIPAL_CHARS = 63


class DatabaseNonceStore:
    """``califusion.crypto.signing.NonceStore`` backed by the ``nonces`` table.

    A claim is its own committed transaction: a nonce stays spent even when the request that
    carried it fails later, so a failed request cannot be replayed into a success.
    """

    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(self, principal: str, nonce: str, expires_at: float) -> bool:
        """True the first time ``(principal, nonce)`` is seen, False on every later claim."""
        if len(nonce) > MAX_NONCE_CHARS or len(principal) > MAX_PRINCIPAL_CHARS:
            raise BadSignature("request nonce or principal header is too long")
        try:
            with self._db.transaction() as session:
                session.add(NonceRow(principal=principal, nonce=nonce, expires_at=expires_at))
        except IntegrityError:
            return False
        return True

    def prune(self, now: float) -> int:
        """Forget nonces whose requests are too old to be accepted anyway; how many went."""
        with self._db.transaction() as session:
            result = session.execute(delete(NonceRow).where(NonceRow.expires_at < now))
            return int(getattr(result, "rowcount", 0) or 0)
