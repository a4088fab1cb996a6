"""One error hierarchy for the whole project.

Every error a user can meet is a :class:`CaliFusionError`. Each subclass carries an HTTP status
and a short machine-readable ``code``; the coordinator turns them into RFC 9457 problem bodies in
exactly one place (``coordinator.problems``) and the CLI prints ``str(error)``. Foreign
exceptions (SQLAlchemy, cryptography, httpx, botocore) are translated where they enter.

    CaliFusionError
    ├── InvalidInput (400/422)              bad input from a user or a peer
    │   ├── SpecError                       model / job spec is malformed or unsupported
    │   ├── DataSchemaError                 a local data file fails the job's data schema
    │   ├── WeightsError                    wrong shape, dtype, NaN/inf, bad safetensors bytes
    │   └── PayloadTooLarge (413)           a body or blob over the configured limit
    ├── CryptoError                         says little on purpose
    │   ├── DecryptionFailed                AEAD tag mismatch: tampered or wrong key
    │   ├── WrongRecipient                  envelope sealed to another agreement key
    │   ├── ContextMismatch                 envelope opened under another context
    │   └── WrongPassphrase                 keystore cannot be unlocked with this passphrase
    ├── AuthenticationError (401)           the request is not provably from a registered principal
    │   ├── BadSignature
    │   ├── StaleRequest                    timestamp outside the accepted window
    │   ├── ReplayedNonce                   nonce already seen for this principal
    │   └── UnknownPrincipal                no registered key for that principal
    ├── PermissionDenied (403)              authenticated, but not allowed to do this
    ├── NotFound (404)
    ├── Conflict (409)
    │   └── IllegalTransition               lifecycle state machine refuses the move
    └── Unavailable (503)                   a dependency is down; retry later
"""

from __future__ import annotations

from typing import Any, ClassVar


class CaliFusionError(Exception):
    """Base of every error the project raises on purpose."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "internal"
    title: ClassVar[str] = "Internal error"

    def __init__(self, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.message = message
        self.detail: dict[str, Any] = detail

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 problem body for this error."""
        body: dict[str, Any] = {
            "type": f"https://califusion.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.message,
            "code": self.code,
        }
        if self.detail:
            body["errors"] = self.detail
        return body


class InvalidInput(CaliFusionError):
    status = 422
    code = "invalid-input"
    title = "Invalid input"


class SpecError(InvalidInput):
    code = "invalid-spec"
    title = "Invalid job or model spec"


class DataSchemaError(InvalidInput):
    code = "data-schema"
    title = "Data does not match the job's schema"


class WeightsError(InvalidInput):
    code = "invalid-weights"
    title = "Invalid model weights"


class PayloadTooLarge(InvalidInput):
    status = 413
    code = "payload-too-large"
    title = "Payload too large"


class CryptoError(CaliFusionError):
    status = 400
    code = "crypto"
    title = "Cryptographic check failed"


class DecryptionFailed(CryptoError):
    code = "decryption-failed"
    title = "Ciphertext could not be authenticated"


class WrongRecipient(CryptoError):
    code = "wrong-recipient"
    title = "Envelope is sealed to another key"


class ContextMismatch(CryptoError):
    code = "context-mismatch"
    title = "Envelope belongs to another context"


class WrongPassphrase(CryptoError):
    code = "wrong-passphrase"
    title = "Wrong passphrase"


class AuthenticationError(CaliFusionError):
    status = 401
    code = "unauthenticated"
    title = "Authentication failed"


class BadSignature(AuthenticationError):
    code = "bad-signature"
    title = "Signature does not verify"


class StaleRequest(AuthenticationError):
    code = "stale-request"
    title = "Request timestamp outside the accepted window"


class ReplayedNonce(AuthenticationError):
    code = "replayed-nonce"
    title = "Request nonce was already used"


class UnknownPrincipal(AuthenticationError):
    code = "unknown-principal"
    title = "Principal is not registered"


class PermissionDenied(CaliFusionError):
    status = 403
    code = "forbidden"
    title = "Not allowed"


class NotFound(CaliFusionError):
    status = 404
    code = "not-found"
    title = "Not found"


class Conflict(CaliFusionError):
    status = 409
    code = "conflict"
    title = "Conflict"


class IllegalTransition(Conflict):
    code = "illegal-transition"
    title = "Illegal state transition"


class Unavailable(CaliFusionError):
    status = 503
    code = "unavailable"
    title = "Service unavailable"


def _all_error_classes(base: type[CaliFusionError]) -> list[type[CaliFusionError]]:
    found = [base]
    for sub in base.__subclasses__():
        found.extend(_all_error_classes(sub))
    return found


def error_from_problem(status: int, body: dict[str, Any]) -> CaliFusionError:
    """Rebuild the error a peer reported as a problem body (the inverse of ``problem()``)."""
    code = str(body.get("code", ""))
    message = str(body.get("detail") or body.get("title") or f"HTTP {status}")
    detail = body.get("errors") if isinstance(body.get("errors"), dict) else {}
    by_code = {cls.code: cls for cls in _all_error_classes(CaliFusionError)}
    cls = by_code.get(code)
    if cls is None:
        by_status = [c for c in _all_error_classes(CaliFusionError) if c.status == status]
        cls = by_status[0] if by_status else CaliFusionError
    return cls(message, **(detail or {}))
