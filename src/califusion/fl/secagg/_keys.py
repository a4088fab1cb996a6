"""Key agreement, seed derivation and share encryption used by the SecAgg+ state machines.

Every secret of a round is bound to its purpose, the round id and the client ids involved:

* pairwise mask seed of clients a < b: HKDF(X25519(s_a, s_b^PK), "secagg/pairwise-mask",
  round ‖ a ‖ b) — both ends derive the same seed, the server only after reconstructing s;
* self-mask seed of client u: HKDF(b_u, "secagg/self-mask", round ‖ u), where b_u is the
  32-byte secret that is Shamir-shared;
* share encryption between u and v: AES-256-GCM under keys from
  HKDF(X25519(c_u, c_v^PK), round ‖ min ‖ max) — one key per direction, so the two directions
  of a pair never share a key — with the ids and round as associated data, so a ciphertext
  cannot be moved to another sender, recipient or round without failing authentication.

The agreements run on raw 32-byte keys through libsodium (:mod:`califusion.crypto.fastsig`):
it releases the GIL, so the clients of a one-process round agree keys on every core.
"""

from __future__ import annotations

import hashlib
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from califusion.core.errors import DecryptionFailed
from califusion.crypto.fastsig import InvalidAgreement, x25519
from califusion.crypto.prg import derive_seed
from califusion.crypto.shamir import Share
from califusion.fl.secagg.errors import ProtocolViolation
from califusion.fl.secagg.messages import EncryptedShare

SELF_MASK_PURPOSE = "secagg/self-mask"
PAIRWISE_PURPOSE = "secagg/pairwise-mask"
NONCE_BYTES = 12
_LENGTH = struct.Struct(">I")


def ids(*clients: int) -> bytes:
    return b"".join(client.to_bytes(8, "big") for client in clients)


PrivateKey = bytes | X25519PrivateKey
"""An X25519 private key: raw 32 bytes (what the state machines hold) or a key object."""


def agree(private: PrivateKey, peer_public: bytes) -> bytes:
    """X25519 shared secret; a malformed or low-order peer key is a protocol violation."""
    raw = private if isinstance(private, bytes) else private.private_bytes_raw()
    try:
        return x25519(raw, peer_public)
    except InvalidAgreement:
        raise ProtocolViolation("a peer's key is not a usable X25519 public key") from None


def pairwise_seed(
    private: PrivateKey, peer_public: bytes, round_id: bytes, me: int, peer: int
) -> bytes:
    low, high = sorted((me, peer))
    return derive_seed(agree(private, peer_public), PAIRWISE_PURPOSE, round_id + ids(low, high))


def self_mask_seed(secret: bytes, round_id: bytes, owner: int) -> bytes:
    return derive_seed(secret, SELF_MASK_PURPOSE, round_id + ids(owner))


def commit_self_mask(secret: bytes, round_id: bytes, owner: int) -> bytes:
    tag = b"califusion/secagg/v1/self-mask-commitment\x00"
    return hashlib.sha256(tag + round_id + ids(owner) + secret).digest()


class ShareChannel:
    """AES-256-GCM both ways between two clients, from one X25519 agreement of their c keys.

    One HKDF call gives 64 bytes: the first half keys the direction from the lower id to the
    higher, the second the other direction, so the two directions never share a key.
    """

    def __init__(
        self, private: PrivateKey, peer_public: bytes, round_id: bytes, me: int, peer: int
    ) -> None:
        low, high = sorted((me, peer))
        info = b"califusion/secagg/v1/share-encryption\x00" + round_id + ids(low, high)
        keys = HKDF(algorithm=hashes.SHA256(), length=64, salt=None, info=info).derive(
            agree(private, peer_public)
        )
        upward, downward = AESGCM(keys[:32]), AESGCM(keys[32:])
        self._outgoing, self._incoming = (upward, downward) if me == low else (downward, upward)
        self._round_id, self._me, self._peer = round_id, me, peer

    def seal(self, shares: tuple[Share, Share], nonce: bytes) -> EncryptedShare:
        """Encrypt (self-mask share, key share) from us to the peer."""
        header = ids(self._me, self._peer)
        plaintext = header + b"".join(
            _LENGTH.pack(len(raw)) + raw for raw in (shares[0].to_bytes(), shares[1].to_bytes())
        )
        ciphertext = self._outgoing.encrypt(nonce, plaintext, self._round_id + header)
        return EncryptedShare(self._me, self._peer, nonce, ciphertext)

    def open(self, sealed: EncryptedShare) -> tuple[Share, Share]:
        """Decrypt the peer's shares; raises :class:`DecryptionFailed` if anything was altered."""
        header = ids(self._peer, self._me)
        if (sealed.sender, sealed.recipient) != (self._peer, self._me):
            raise DecryptionFailed(f"shares from client {sealed.sender} name other parties")
        try:
            plaintext = self._incoming.decrypt(
                sealed.nonce, sealed.ciphertext, self._round_id + header
            )
        except (InvalidTag, ValueError):
            raise DecryptionFailed(
                f"shares from client {sealed.sender} failed to decrypt"
            ) from None
        if plaintext[:16] != header:
            raise DecryptionFailed(f"shares from client {sealed.sender} name other parties")
        parts: list[Share] = []
        offset = 16
        for _ in range(2):
            (length,) = _LENGTH.unpack_from(plaintext, offset)
            parts.append(Share.from_bytes(plaintext[offset + 4 : offset + 4 + length]))
            offset += 4 + length
        return parts[0], parts[1]
