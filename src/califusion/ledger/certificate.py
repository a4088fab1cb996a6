"""ICRC-3 tip certificates for the embedded ledger: the tip signed with the ledger's Ed25519 key.

On the Internet Computer ``icrc3_get_tip_certificate`` returns a subnet-signed hash tree with the
leaves ``last_block_index`` (LEB128) and ``last_block_hash``. The embedded ledger has no subnet,
so it signs the same two values with its own key. The signed message is

    TIP_CERTIFICATE_DOMAIN ‖ LEB128(last_block_index) ‖ last_block_hash (32 bytes)

and a verifier checks it against a public key it already trusts — never against a key that came
with the certificate. :func:`verify_tip_certificate` raises; it never returns a bool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from califusion.core.errors import BadSignature, InvalidInput
from califusion.ledger.icrc3 import leb128

TIP_CERTIFICATE_DOMAIN = b"califusion/ledger/icrc3-tip/v1\x00"
HASH_BYTES = 32


@dataclass(frozen=True, slots=True)
class TipCertificate:
    """The signed tip of the block log."""

    last_block_index: int
    last_block_hash: bytes
    signature: bytes


def tip_message(last_block_index: int, last_block_hash: bytes) -> bytes:
    if len(last_block_hash) != HASH_BYTES:
        raise InvalidInput("a block hash is 32 bytes")
    return TIP_CERTIFICATE_DOMAIN + leb128(last_block_index) + last_block_hash


class TipSigner(Protocol):
    """What signs tips: an :class:`Ed25519PrivateKey` or a :class:`~califusion.crypto.Identity`."""

    def sign(self, data: bytes) -> bytes: ...


def sign_tip(key: TipSigner, last_block_index: int, last_block_hash: bytes) -> TipCertificate:
    signature = key.sign(tip_message(last_block_index, last_block_hash))
    return TipCertificate(last_block_index, last_block_hash, signature)


def verify_tip_certificate(certificate: TipCertificate, trusted_public_key: bytes) -> None:
    """Raise :class:`BadSignature` unless the ledger key signed this tip."""
    try:
        key = Ed25519PublicKey.from_public_bytes(trusted_public_key)
        message = tip_message(certificate.last_block_index, certificate.last_block_hash)
        key.verify(certificate.signature, message)
    except (InvalidSignature, ValueError, InvalidInput) as exc:
        raise BadSignature("the tip certificate does not verify") from exc
