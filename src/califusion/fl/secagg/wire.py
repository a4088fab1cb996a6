"""SecAgg+ messages as bytes: for HTTP bodies and for the coordinator's event log.

One format for both, so the log holds exactly what the clients signed and sent. A message is a
kind byte, then its fields in order: integers as 8-byte big-endian, byte strings with a 4-byte
big-endian length, sequences with a 4-byte count. Decoding checks every length against what is
left and rejects trailing bytes; anything malformed is a :class:`ProtocolViolation`.

A masked input does not travel inline: its vector is uploaded as a content-addressed blob and
the message carries a :class:`MaskedInputRef` — dtype, length and commitment digest of the
vector (``commitment.py``) with the client's signature, and the blob's address (its SHA-256,
the blob store's name for it). The signed payload is the same as :class:`MaskedInput`'s, so the
reference is the client's signed commitment to the vector, and :meth:`MaskedInputRef.attach`
rebuilds the full message once the blob is fetched. References logged before commitments moved
to BLAKE3 have no separate address (kind 3): their SHA-256 commitment was the address.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from califusion.fl.secagg.errors import ProtocolViolation
from califusion.fl.secagg.messages import (
    AdvertiseKeys,
    ConsistencyCheck,
    ConsistencySignature,
    EncryptedShare,
    KeysAdvertised,
    MaskedInput,
    RevealedShare,
    ServerMessage,
    ShareKeys,
    SharesForwarded,
    UnmaskRequest,
    UnmaskShares,
    masked_input_payload,
)

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_ADVERTISE, _SHARE_KEYS, _LEGACY_MASKED_REF, _UNMASK, _CONSISTENCY, _MASKED_REF = 1, 2, 3, 4, 5, 6
_KEYS_ADVERTISED, _SHARES_FORWARDED, _UNMASK_REQUEST, _CONSISTENCY_CHECK = 11, 12, 13, 14
_DTYPES = ("<u4", "<u8")


@dataclass(frozen=True, slots=True)
class MaskedInputRef:
    """A masked input whose vector is the blob named by ``blob`` (its SHA-256); ``digest`` is
    the vector's commitment digest, which the client signed."""

    round_id: bytes
    sender: int
    dtype: str
    size: int
    digest: bytes
    signature: bytes
    blob: bytes

    @classmethod
    def of(cls, message: MaskedInput, *, digest: bytes, blob: bytes) -> MaskedInputRef:
        return cls(
            message.round_id,
            message.sender,
            message.masked.dtype.str,
            message.masked.size,
            digest,
            message.signature,
            blob,
        )

    def payload(self) -> bytes:
        """The bytes the client signed (as :meth:`MaskedInput.payload`)."""
        return masked_input_payload(self.round_id, self.sender, self.dtype, self.size, self.digest)

    def attach(self, vector: npt.NDArray[np.unsignedinteger[Any]]) -> MaskedInput:
        """The full message with its vector; the vector must have the announced dtype and size
        (its digest is checked by whoever verifies the signature)."""
        if vector.dtype.str != self.dtype or vector.shape != (self.size,):
            raise ProtocolViolation(
                f"masked input of client {self.sender} is not {self.size} words of {self.dtype}"
            )
        return MaskedInput(self.round_id, self.sender, vector, self.signature)


WireClientMessage = AdvertiseKeys | ShareKeys | MaskedInputRef | ConsistencySignature | UnmaskShares


class _Writer:
    def __init__(self, kind: int) -> None:
        self.parts: list[bytes] = [bytes([kind])]

    def num(self, value: int) -> _Writer:
        self.parts.append(_U64.pack(value))
        return self

    def raw(self, value: bytes) -> _Writer:
        self.parts += [_U32.pack(len(value)), value]
        return self

    def count(self, value: int) -> _Writer:
        self.parts.append(_U32.pack(value))
        return self

    def nums(self, values: frozenset[int]) -> _Writer:
        self.count(len(values))
        for value in sorted(values):
            self.num(value)
        return self

    def done(self) -> bytes:
        return b"".join(self.parts)


class _Reader:
    def __init__(self, data: bytes) -> None:
        if not data:
            raise ProtocolViolation("empty secure-aggregation message")
        self.data = data
        self.kind = data[0]
        self.offset = 1

    def _take(self, size: int) -> bytes:
        end = self.offset + size
        if end > len(self.data):
            raise ProtocolViolation("truncated secure-aggregation message")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def num(self) -> int:
        value: int = _U64.unpack(self._take(8))[0]
        return value

    def count(self, item_bytes: int) -> int:
        value: int = _U32.unpack(self._take(4))[0]
        if value * item_bytes > len(self.data) - self.offset:
            raise ProtocolViolation("secure-aggregation message announces more than it holds")
        return value

    def raw(self) -> bytes:
        return self._take(self.count(1))

    def nums(self) -> frozenset[int]:
        return frozenset(self.num() for _ in range(self.count(8)))

    def done(self) -> None:
        if self.offset != len(self.data):
            raise ProtocolViolation("trailing bytes after a secure-aggregation message")


def encode_client(message: WireClientMessage) -> bytes:
    if isinstance(message, AdvertiseKeys):
        w = _Writer(_ADVERTISE).raw(message.round_id).num(message.sender)
        return w.raw(message.cipher_public).raw(message.mask_public).raw(message.signature).done()
    if isinstance(message, ShareKeys):
        w = _Writer(_SHARE_KEYS).raw(message.round_id).num(message.sender)
        w.raw(message.self_mask_commitment).count(len(message.shares))
        for share in message.shares:
            w.num(share.sender).num(share.recipient).raw(share.nonce).raw(share.ciphertext)
        return w.raw(message.signature).done()
    if isinstance(message, MaskedInputRef):
        w = _Writer(_MASKED_REF).raw(message.round_id).num(message.sender)
        w.raw(message.dtype.encode("ascii")).num(message.size).raw(message.digest)
        return w.raw(message.signature).raw(message.blob).done()
    if isinstance(message, ConsistencySignature):
        w = _Writer(_CONSISTENCY).raw(message.round_id).num(message.sender).raw(message.view)
        return w.raw(message.signature).done()
    w = _Writer(_UNMASK).raw(message.round_id).num(message.sender)
    for revealed in (message.self_mask_shares, message.key_shares):
        w.count(len(revealed))
        for item in revealed:
            w.num(item.owner).raw(item.share)
    return w.raw(message.signature).done()


def decode_client(data: bytes) -> WireClientMessage:
    r = _Reader(data)
    message: WireClientMessage
    if r.kind == _ADVERTISE:
        message = AdvertiseKeys(r.raw(), r.num(), r.raw(), r.raw(), r.raw())
    elif r.kind == _SHARE_KEYS:
        round_id, sender, commitment = r.raw(), r.num(), r.raw()
        shares = tuple(
            EncryptedShare(r.num(), r.num(), r.raw(), r.raw()) for _ in range(r.count(24))
        )
        message = ShareKeys(round_id, sender, commitment, shares, r.raw())
    elif r.kind in (_MASKED_REF, _LEGACY_MASKED_REF):
        round_id, sender = r.raw(), r.num()
        dtype = r.raw().decode("ascii", errors="replace")
        if dtype not in _DTYPES:
            raise ProtocolViolation(f"masked words are uint32 or uint64, got {dtype!r}")
        size, digest, signature = r.num(), r.raw(), r.raw()
        blob = r.raw() if r.kind == _MASKED_REF else digest
        message = MaskedInputRef(round_id, sender, dtype, size, digest, signature, blob)
    elif r.kind == _CONSISTENCY:
        message = ConsistencySignature(r.raw(), r.num(), r.raw(), r.raw())
    elif r.kind == _UNMASK:
        round_id, sender = r.raw(), r.num()
        survivors = tuple(RevealedShare(r.num(), r.raw()) for _ in range(r.count(12)))
        dropped = tuple(RevealedShare(r.num(), r.raw()) for _ in range(r.count(12)))
        message = UnmaskShares(round_id, sender, survivors, dropped, r.raw())
    else:
        raise ProtocolViolation(f"unknown client message kind {r.kind}")
    r.done()
    return message


def encode_server(message: ServerMessage) -> bytes:
    if isinstance(message, KeysAdvertised):
        w = _Writer(_KEYS_ADVERTISED).raw(message.round_id).num(message.recipient)
        w.count(len(message.keys))
        for advertised in message.keys:
            w.raw(encode_client(advertised))
        return w.done()
    if isinstance(message, SharesForwarded):
        w = _Writer(_SHARES_FORWARDED).raw(message.round_id).num(message.recipient)
        w.count(len(message.shares))
        for share in message.shares:
            w.num(share.sender).num(share.recipient).raw(share.nonce).raw(share.ciphertext)
        return w.done()
    if isinstance(message, ConsistencyCheck):
        w = _Writer(_CONSISTENCY_CHECK).raw(message.round_id).num(message.recipient)
        return w.nums(message.survivors).nums(message.dropped).done()
    w = _Writer(_UNMASK_REQUEST).raw(message.round_id).num(message.recipient)
    w.nums(message.survivors).nums(message.dropped).count(len(message.signatures))
    for signed in message.signatures:
        w.raw(encode_client(signed))
    return w.done()


def decode_server(data: bytes) -> ServerMessage:
    r = _Reader(data)
    message: ServerMessage
    if r.kind == _KEYS_ADVERTISED:
        round_id, recipient = r.raw(), r.num()
        keys = []
        for _ in range(r.count(4)):
            advertised = decode_client(r.raw())
            if not isinstance(advertised, AdvertiseKeys):
                raise ProtocolViolation("forwarded keys must be advertise-keys messages")
            keys.append(advertised)
        message = KeysAdvertised(round_id, recipient, tuple(keys))
    elif r.kind == _SHARES_FORWARDED:
        round_id, recipient = r.raw(), r.num()
        shares = tuple(
            EncryptedShare(r.num(), r.num(), r.raw(), r.raw()) for _ in range(r.count(24))
        )
        message = SharesForwarded(round_id, recipient, shares)
    elif r.kind == _CONSISTENCY_CHECK:
        round_id, recipient = r.raw(), r.num()
        message = ConsistencyCheck(round_id, recipient, r.nums(), r.nums())
    elif r.kind == _UNMASK_REQUEST:
        round_id, recipient = r.raw(), r.num()
        survivors, dropped = r.nums(), r.nums()
        signatures = []
        for _ in range(r.count(4)):
            signed = decode_client(r.raw())
            if not isinstance(signed, ConsistencySignature):
                raise ProtocolViolation("forwarded signatures must be consistency signatures")
            signatures.append(signed)
        message = UnmaskRequest(round_id, recipient, survivors, dropped, tuple(signatures))
    else:
        raise ProtocolViolation(f"unknown server message kind {r.kind}")
    r.done()
    return message
