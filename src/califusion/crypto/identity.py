"""Identities: an Ed25519 signing key and a separate X25519 key-agreement key.

The signing key names the actor: its principal is the ICP self-authenticating principal of the
Ed25519 public key, so every identity is also a valid ledger owner. The agreement key is only
used to open envelopes sealed to it (see ``crypto.envelope``). Private keys never appear in a
repr; at rest they live in an encrypted keystore (``crypto.keystore``).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from califusion.core.errors import BadSignature, InvalidInput
from califusion.crypto.encoding import b64d, b64e
from califusion.crypto.principal import Principal

KEY_BYTES = 32
SIGNATURE_BYTES = 64


def _check_key_length(name: str, value: object) -> None:
    if not isinstance(value, bytes) or len(value) != KEY_BYTES:
        raise InvalidInput(f"{name} must be {KEY_BYTES} raw bytes")


@dataclass(frozen=True, slots=True, repr=False)
class PublicIdentity:
    """The public half of an identity: what peers store and what the coordinator registers."""

    signing_public: bytes
    agreement_public: bytes

    def __post_init__(self) -> None:
        _check_key_length("signing_public", self.signing_public)
        _check_key_length("agreement_public", self.agreement_public)

    @property
    def principal(self) -> Principal:
        return Principal.self_authenticating(self.signing_public)

    def __repr__(self) -> str:
        return f"PublicIdentity(principal={self.principal})"

    def verify(self, signature: bytes, data: bytes) -> None:
        """Raise BadSignature unless ``signature`` is this identity's Ed25519 signature of data."""
        if len(signature) != SIGNATURE_BYTES:
            raise BadSignature("signature does not verify")
        try:
            Ed25519PublicKey.from_public_bytes(self.signing_public).verify(signature, data)
        except (InvalidSignature, ValueError) as exc:
            raise BadSignature("signature does not verify") from exc

    def to_dict(self) -> dict[str, str]:
        return {
            "principal": self.principal.to_text(),
            "signing_public": b64e(self.signing_public),
            "agreement_public": b64e(self.agreement_public),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> PublicIdentity:
        """Parse ``to_dict`` output; the principal must be the one of the signing key."""
        fields: dict[str, str] = {}
        for key in ("principal", "signing_public", "agreement_public"):
            value = data.get(key)
            if not isinstance(value, str):
                raise InvalidInput(f"public identity lacks the text field {key!r}")
            fields[key] = value
        try:
            public = cls(b64d(fields["signing_public"]), b64d(fields["agreement_public"]))
        except InvalidInput as exc:
            raise InvalidInput(f"public identity has a malformed key: {exc}") from exc
        claimed = Principal.from_text(fields["principal"])
        if not hmac.compare_digest(claimed.raw, public.principal.raw):
            raise InvalidInput(
                f"public identity names principal {fields['principal']} "
                f"but its signing key belongs to {public.principal}"
            )
        return public


class Identity:
    """A private identity. Keep it in memory only as long as needed; never log it."""

    __slots__ = ("_agreement", "_public", "_signing")

    def __init__(self, signing: Ed25519PrivateKey, agreement: X25519PrivateKey) -> None:
        self._signing = signing
        self._agreement = agreement
        raw = (Encoding.Raw, PublicFormat.Raw)
        self._public = PublicIdentity(
            signing.public_key().public_bytes(*raw),
            agreement.public_key().public_bytes(*raw),
        )

    @classmethod
    def generate(cls) -> Identity:
        return cls(Ed25519PrivateKey.generate(), X25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, signing_seed: bytes, agreement_private: bytes) -> Identity:
        """Rebuild an identity from its 32-byte Ed25519 seed and 32-byte X25519 scalar."""
        _check_key_length("signing_seed", signing_seed)
        _check_key_length("agreement_private", agreement_private)
        return cls(
            Ed25519PrivateKey.from_private_bytes(signing_seed),
            X25519PrivateKey.from_private_bytes(agreement_private),
        )

    def export_private_bytes(self) -> tuple[bytes, bytes]:
        """(Ed25519 seed, X25519 scalar), raw. Only for the keystore, which encrypts them."""
        raw = (Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        return self._signing.private_bytes(*raw), self._agreement.private_bytes(*raw)

    def public(self) -> PublicIdentity:
        return self._public

    @property
    def principal(self) -> Principal:
        return self._public.principal

    @property
    def agreement_private(self) -> X25519PrivateKey:
        """The X25519 private key, for opening envelopes sealed to this identity."""
        return self._agreement

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``data``."""
        return self._signing.sign(data)

    def __repr__(self) -> str:
        return f"Identity(principal={self.principal})"

    def __reduce__(self) -> NoReturn:
        # Pickling would copy private keys into whatever stores the pickle.
        raise TypeError("an Identity cannot be pickled; save it with crypto.keystore")
