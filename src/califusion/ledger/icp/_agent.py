"""The one place that drives icp-py-core's agent (untyped): signed calls, and its errors.

:class:`CanisterAgent` sends query and update calls to one canister, signed by our
:class:`~califusion.crypto.identity.Identity`, and returns the reply decoded against the shipped
interface. The library signs through :class:`_Signer`, which hands it our key's DER public key
and our Ed25519 signatures (made by ``cryptography``); the private key never leaves our
``Identity``. Every library exception is translated here into the project's errors:

=====================================================  ===========================================
icp-py-core                                            raised as
=====================================================  ===========================================
``TransportError`` (HTTP, DNS, TLS)                     :class:`Unavailable`
``TimeoutWaitingForResponse``, ``IngressExpiryError``   :class:`Unavailable` (outcome unknown)
``SecurityError`` (certificate, signatures)             :class:`Unavailable` (outcome unknown)
``ReplicaReject`` code 4/5 (canister reject or trap)    :class:`InvalidInput`
``ReplicaReject`` code 3 (no such canister or method)   :class:`NotFound`
``ReplicaReject`` code 1/2/6, other                     :class:`Unavailable`
a reply that is not what the protocol promises         :class:`LedgerProtocolError`
=====================================================  ===========================================
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, NoReturn, Protocol, cast

import httpx

from califusion.core.errors import (
    CaliFusionError,
    CryptoError,
    InvalidInput,
    NotFound,
    Unavailable,
)
from califusion.crypto.identity import Identity
from califusion.crypto.principal import ED25519_DER_PREFIX, Principal
from califusion.ledger.icp._candid import (
    DECODE_ERRORS,
    LedgerProtocolError,
    MethodSignature,
    library,
    reply_values,
)

__all__ = ["BLST_HINT", "CanisterAgent", "ReplicaTransport", "blst_missing_reason"]


BLST_HINT = (
    "icp-py-core verifies certificates with the 'blst' Python binding, which is not on PyPI: "
    "build it from https://github.com/supranational/blst (bindings/python, `python3 run.me`) "
    "and put blst.py and _blst*.so on the Python path. Only for a local test replica may "
    "verify_certificate=False be passed instead."
)
_REJECT_NAMES = {
    1: "SYS_FATAL",
    2: "SYS_TRANSIENT",
    3: "DESTINATION_INVALID",
    4: "CANISTER_REJECT",
    5: "CANISTER_ERROR",
    6: "SYS_UNKNOWN",
}
_OUTCOME_UNKNOWN = (
    "the call may or may not have been executed: read the ledger before acting, or retry "
    "with the same created_at_time and memo, which the ledger answers with Duplicate if it ran"
)


class ReplicaTransport(Protocol):
    """The HTTP side of icp-py-core's agent (its ``Client``): where a test puts a fake replica."""

    def query(self, canister_id: str, data: bytes, *, timeout: httpx.Timeout) -> bytes:
        """POST a signed query envelope; the CBOR response body."""
        ...

    def call(self, canister_id: str, data: bytes) -> httpx.Response:
        """POST a signed update envelope to ``/api/v4/…/call``; the HTTP response."""
        ...

    def read_state(self, canister_id: str, data: bytes) -> bytes:
        """POST a signed read_state envelope (used to poll an update); the CBOR body."""
        ...


def blst_missing_reason() -> str | None:
    """``None`` if icp-py-core can verify BLS certificates here, else why it cannot."""
    certificate: Any = library("icp_certificate.certificate")
    try:
        certificate.ensure_blst_available()
    except cast(type[Exception], certificate.BlstUnavailable) as exc:
        return str(exc).splitlines()[0]
    return None


class _Signer:
    """icp-py-core's identity interface (``sender()``, ``sign()``) over our Identity."""

    def __init__(self, identity: Identity) -> None:
        self._identity = identity
        self._der = ED25519_DER_PREFIX + identity.public().signing_public
        principal_class: Any = library("icp_principal.principal").Principal
        self._sender: Any = principal_class(identity.principal.raw)
        # The library derives principals itself too; both derivations must agree.
        derived = cast(bytes, principal_class.self_authenticating(self._der).bytes)
        if derived != identity.principal.raw:
            raise CryptoError("icp-py-core derives another principal for this key")

    def sender(self) -> Any:
        return self._sender

    def sign(self, message: bytes) -> tuple[bytes, bytes]:
        return self._der, self._identity.sign(message)


@dataclass(frozen=True, slots=True)
class _Errors:
    transport: type[Exception]
    timeout: type[Exception]
    ingress_expiry: type[Exception]
    security: type[Exception]
    reject: type[Exception]
    payload: type[Exception]
    blst: type[Exception]
    base: type[Exception]


@cache
def _errors() -> _Errors:
    errors: Any = library("icp_core.errors")
    blst: Any = library("icp_certificate.certificate").BlstUnavailable
    return _Errors(
        transport=errors.TransportError,
        timeout=errors.TimeoutWaitingForResponse,
        ingress_expiry=errors.IngressExpiryError,
        security=errors.SecurityError,
        reject=errors.ReplicaReject,
        payload=errors.PayloadEncodingError,
        blst=blst,
        base=errors.ICError,
    )


def _reject_error(exc: Exception, where: str) -> CaliFusionError:
    code = getattr(exc, "reject_code", None)
    message = str(getattr(exc, "reject_message", "") or exc)
    error_code = getattr(exc, "error_code", None)
    name = _REJECT_NAMES.get(code, "unknown") if isinstance(code, int) else "unknown"
    text = f"{where} was rejected ({name}, code {code}"
    text += f", {error_code}): {message}" if error_code else f"): {message}"
    if code in (4, 5):
        return InvalidInput(text)
    if code == 3:
        return NotFound(text)
    return Unavailable(text)


class CanisterAgent:
    """Signed query and update calls to one canister through icp-py-core's ``Agent``.

    ``verify_certificate`` is passed to every update call: with it, icp-py-core checks the
    reply's certificate (BLS signature, delegation, canister range, time) against the IC
    mainnet root key. Queries are answered by one replica and are not certified either way.
    """

    def __init__(
        self,
        replica_url: str,
        canister_id: Principal,
        identity: Identity,
        *,
        verify_certificate: bool,
        timeout_s: float,
        transport: ReplicaTransport | None = None,
    ) -> None:
        agent_module: Any = library("icp_agent.agent")
        client: object = transport
        if client is None:
            client = library("icp_agent.client").Client(url=replica_url.rstrip("/"))
        self._agent: Any = agent_module.Agent(_Signer(identity), client)
        self._canister = canister_id.to_text()
        self._url = replica_url
        self._verify = verify_certificate
        self._timeout_s = timeout_s

    def query(self, signature: MethodSignature, arg: bytes) -> object:
        """Call a query method; its single reply value in the decoded form of :mod:`._candid`."""
        try:
            decoded: object = self._agent.query(
                self._canister,
                signature.name,
                arg,
                return_type=list(signature.rets.types),
                timeout=self._timeout_s,
            )
        except Exception as exc:  # every library exception is translated
            self._translate(exc, signature.name, update=False)
        return self._single(decoded, signature)

    def update(self, signature: MethodSignature, arg: bytes) -> object:
        """Call a method as an update (replicated, certified reply); its single reply value."""
        try:
            decoded: object = self._agent.update(
                self._canister,
                signature.name,
                arg,
                return_type=list(signature.rets.types),
                verify_certificate=self._verify,
                timeout=self._timeout_s,
            )
        except Exception as exc:  # every library exception is translated
            self._translate(exc, signature.name, update=True)
        return self._single(decoded, signature)

    @staticmethod
    def _single(decoded: object, signature: MethodSignature) -> object:
        (value,) = reply_values(decoded, signature.rets)
        return value

    def _translate(self, exc: Exception, method_name: str, *, update: bool) -> NoReturn:
        errors = _errors()
        where = f"{method_name} on ledger canister {self._canister} at {self._url}"
        unknown = f"; {_OUTCOME_UNKNOWN}" if update else ""
        if isinstance(exc, errors.reject):
            raise _reject_error(exc, where) from exc
        if isinstance(exc, errors.transport):
            raise Unavailable(f"{where}: the replica is unreachable: {exc}{unknown}") from exc
        if isinstance(exc, (errors.timeout, errors.ingress_expiry)):
            raise Unavailable(f"{where}: no answer in time ({exc}){unknown}") from exc
        if isinstance(exc, errors.blst):
            raise Unavailable(
                f"{where}: cannot verify the certificate{unknown}. {BLST_HINT}"
            ) from exc
        if isinstance(exc, errors.security):
            raise Unavailable(
                f"{where}: the reply's certificate or signature did not verify ({exc}){unknown}"
            ) from exc
        if isinstance(exc, (errors.payload, errors.base, RuntimeError, *DECODE_ERRORS)):
            raise LedgerProtocolError(f"{where}: unexpected reply ({exc}){unknown}") from exc
        raise exc
