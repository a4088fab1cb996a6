"""Messages of a SecAgg+ round and how client messages are signed.

Every client message carries the round id and its sender and is signed with the sender's
Ed25519 identity key over a canonical encoding: a domain tag, the message kind, then each field
length-prefixed, so no two different messages share an encoding. A masked vector is signed
through its commitment digest (with its dtype and length). The server verifies each signature
against the registered identity, so a tampered message fails, a message signed for another
round is a :class:`WrongRound` and a second copy is a :class:`DuplicateMessage`.
The signed masked-input payload doubles as the client's commitment to its masked vector: the
vector enters it through the round's commitment hash (``commitment.py``: BLAKE3), and the round
transcript lists these signed commitments (``transcript.py``).
Server messages are not signed: an honest client's safety never rests on trusting them (it
verifies its peers' signed keys itself, and before unmasking its peers' signatures over the
survivor set — ``consistency.py`` — and refuses unsafe unmask requests).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from califusion.core.errors import BadSignature, InvalidInput
from califusion.crypto.fastsig import verify_ed25519

_DOMAIN = b"califusion/secagg/v1\x00"


class Signer(Protocol):
    """Anything that signs with an Ed25519 identity key: ``Ed25519PrivateKey``, ``Identity``."""

    def sign(self, data: bytes) -> bytes: ...


def masked_input_payload(
    round_id: bytes, sender: int, dtype: str, size: int, digest: bytes
) -> bytes:
    """What a client signs for its masked input: the vector enters through its commitment
    digest (``commitment.vector_digest`` with the round's hash)."""
    return _canonical(b"masked-input", round_id, sender, dtype.encode("ascii"), size, digest)


_LENGTH = struct.Struct(">I")
_INTEGER = struct.Struct(">IQ")  # an integer field: its length (8), then 8 bytes big-endian
_INTEGERS = np.dtype([("length", ">u4"), ("value", ">u8")])  # the same, for many at once


def _canonical(kind: bytes, *fields: bytes | int) -> bytes:
    parts = [_DOMAIN, kind]
    for value in fields:
        if isinstance(value, int):
            parts.append(_INTEGER.pack(8, value))
        else:
            parts += (_LENGTH.pack(len(value)), value)
    return b"".join(parts)


def _integer_fields(values: list[int]) -> bytes:
    """``_canonical``'s encoding of integer fields, for a whole list in one NumPy pass."""
    fields = np.empty(len(values), dtype=_INTEGERS)
    fields["length"] = 8
    fields["value"] = values
    return fields.tobytes()


@dataclass(frozen=True, slots=True)
class AdvertiseKeys:
    """Stage 1, client → server: the client's two fresh X25519 public keys.

    ``cipher_public`` encrypts the shares sent to the client; ``mask_public`` derives its
    pairwise masks. The server forwards the signed message itself to the client's neighbours,
    who check the signature, so the server cannot substitute keys.
    """

    round_id: bytes
    sender: int
    cipher_public: bytes
    mask_public: bytes
    signature: bytes = b""

    def payload(self) -> bytes:
        return _canonical(
            b"advertise-keys", self.round_id, self.sender, self.cipher_public, self.mask_public
        )


@dataclass(frozen=True, slots=True)
class EncryptedShare:
    """A sender's Shamir shares for one recipient, AES-256-GCM encrypted to the recipient."""

    sender: int
    recipient: int
    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True, slots=True)
class ShareKeys:
    """Stage 2, client → server: encrypted shares for each neighbour and a commitment.

    ``self_mask_commitment`` is SHA-256 of the self-mask seed, so the server can tell a correct
    reconstruction from one fed with a bad share.
    """

    round_id: bytes
    sender: int
    self_mask_commitment: bytes
    shares: tuple[EncryptedShare, ...]
    signature: bytes = b""

    def payload(self) -> bytes:
        fields: list[bytes | int] = [self.round_id, self.sender, self.self_mask_commitment]
        for share in self.shares:
            fields += [share.sender, share.recipient, share.nonce, share.ciphertext]
        return _canonical(b"share-keys", *fields)


@dataclass(frozen=True, slots=True, eq=False)
class MaskedInput:
    """Stage 3, client → server: the quantized update plus all masks, mod 2^32 or 2^64."""

    round_id: bytes
    sender: int
    masked: npt.NDArray[np.unsignedinteger[Any]]
    signature: bytes = b""

    def payload(self, digest: bytes) -> bytes:
        """The signed bytes, given the vector's commitment digest: the client computes it in
        the pass that masks the vector, the server in the pass that sums it (each its own)."""
        vector = self.masked
        return masked_input_payload(
            self.round_id, self.sender, vector.dtype.str, vector.size, digest
        )


@dataclass(frozen=True, slots=True)
class RevealedShare:
    """A share of ``owner``'s secret, as ``Share.to_bytes()``."""

    owner: int
    share: bytes


@dataclass(frozen=True, slots=True)
class UnmaskShares:
    """Stage 5, client → server: self-mask shares of survivors, key shares of the dropped."""

    round_id: bytes
    sender: int
    self_mask_shares: tuple[RevealedShare, ...]
    key_shares: tuple[RevealedShare, ...]
    signature: bytes = b""

    def payload(self) -> bytes:
        fields: list[bytes | int] = [self.round_id, self.sender, len(self.self_mask_shares)]
        for revealed in (*self.self_mask_shares, *self.key_shares):
            fields += [revealed.owner, revealed.share]
        return _canonical(b"unmask-shares", *fields)


def survivor_view(survivors: frozenset[int], dropped: frozenset[int]) -> bytes:
    """SHA-256 of a survivor set and dropped set: what a client signs in the consistency check
    (the canonical encoding of ``len(survivors), *sorted(survivors), *sorted(dropped)``)."""
    fields = _integer_fields([len(survivors), *sorted(survivors), *sorted(dropped)])
    return hashlib.sha256(_canonical(b"survivor-view") + fields).digest()


@dataclass(frozen=True, slots=True)
class ConsistencySignature:
    """Stage 4, client → server: the client's signature over the survivor set it was told.

    ``view`` is :func:`survivor_view` of the announced sets. A client signs one view per round
    and the server forwards the signatures with the unmask request (``consistency.py``).
    """

    round_id: bytes
    sender: int
    view: bytes
    signature: bytes = b""

    def payload(self) -> bytes:
        return _canonical(b"consistency-check", self.round_id, self.sender, self.view)


ClientMessage = AdvertiseKeys | ShareKeys | MaskedInput | ConsistencySignature | UnmaskShares


@dataclass(frozen=True, slots=True)
class KeysAdvertised:
    """Server → client after stage 1: the signed keys of the client's present neighbours."""

    round_id: bytes
    recipient: int
    keys: tuple[AdvertiseKeys, ...]


@dataclass(frozen=True, slots=True)
class SharesForwarded:
    """Server → client after stage 2: the shares neighbours encrypted to this client."""

    round_id: bytes
    recipient: int
    shares: tuple[EncryptedShare, ...]


@dataclass(frozen=True, slots=True)
class ConsistencyCheck:
    """Server → client after stage 3: who sent a masked input (U3) and who dropped after
    sharing (U2 − U3), for the client to sign."""

    round_id: bytes
    recipient: int
    survivors: frozenset[int] = field(default_factory=frozenset)
    dropped: frozenset[int] = field(default_factory=frozenset)


@dataclass(frozen=True, slots=True)
class UnmaskRequest:
    """Server → client after stage 4: the signed sets again, with the signatures collected."""

    round_id: bytes
    recipient: int
    survivors: frozenset[int] = field(default_factory=frozenset)
    dropped: frozenset[int] = field(default_factory=frozenset)
    signatures: tuple[ConsistencySignature, ...] = ()


ServerMessage = KeysAdvertised | SharesForwarded | ConsistencyCheck | UnmaskRequest

_Signed = TypeVar(
    "_Signed", AdvertiseKeys, ShareKeys, MaskedInput, ConsistencySignature, UnmaskShares
)


def sign(message: _Signed, identity: Signer, *, payload: bytes | None = None) -> _Signed:
    """``message`` with its signature by ``identity`` (over ``payload`` if already built; a
    masked input's payload must be, from its commitment digest)."""
    return replace(message, signature=identity.sign(payload or _payload(message)))


def _payload(message: ClientMessage) -> bytes:
    if isinstance(message, MaskedInput):
        raise InvalidInput("a masked input is signed through its digest: pass its payload")
    return message.payload()


def verify(
    message: ClientMessage, identity: Ed25519PublicKey, *, payload: bytes | None = None
) -> None:
    """Raise :class:`BadSignature` unless ``identity`` signed exactly this message.

    ``payload`` may be passed by a caller that built it from a digest it computed itself.
    Verified by libsodium (``crypto/fastsig.py``): twice as fast as ``cryptography`` here and
    free of the GIL, which matters for the n·T survivor-set signatures of a round.
    """
    try:
        verify_ed25519(identity.public_bytes_raw(), message.signature, payload or _payload(message))
    except BadSignature:
        raise BadSignature(
            f"secure aggregation message from client {message.sender} is not signed by it"
        ) from None
