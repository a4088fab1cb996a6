"""The hash a round's masked inputs are committed with: BLAKE3-256, or SHA-256 in old rounds.

A client signs the digest of its masked vector (``messages.masked_input_payload``); the server
hashes every vector it sums to check that signature, and the round transcript lists the signed
digests and the digest of the sum. That is two passes of a hash over every masked vector of a
round, the only per-byte work of a signed round besides expanding the masks, so the hash's speed
bounds the round's.

Why BLAKE3. It is a 256-bit cryptographic hash with the same collision and preimage strength as
SHA-256 for this use (128-bit collision resistance binds a client to one vector), and it is a
tree over 1 KiB chunks, so its SIMD code hashes many chunks at once: 8 GB/s on one core of the
reference machine (AVX-512), against 1.8 GB/s for SHA-256 even with SHA-NI
(``bench/results/secagg_round.md``). The ``blake3`` package is the BLAKE3 authors' own binding
of their Rust crate; it releases the GIL, and its streaming ``update`` gives the same digest as
hashing the whole vector, so masking can hash each chunk while it is in cache.

Rounds recorded before BLAKE3 committed with SHA-256 (:data:`LEGACY_SHA256`): their
parameters carry no ``commitment`` field (``config.SecAggConfig.from_dict``), and they still
verify.
Blob addresses (``storage.blobs``) stay SHA-256: a masked input's blob name and its commitment
are two digests (``wire.MaskedInputRef``).
"""

from __future__ import annotations

import hashlib
from typing import Any, Final, Protocol

import blake3
import numpy as np
import numpy.typing as npt

from califusion.core.errors import InvalidInput
from califusion.crypto import prg

BLAKE3: Final = "blake3"
LEGACY_SHA256: Final = "sha256"
COMMITMENTS: Final = (BLAKE3, LEGACY_SHA256)


class Hasher(prg.Hasher, Protocol):
    """A streaming hash fed the bytes of each finished chunk of a vector, then asked for its
    digest."""

    def digest(self) -> bytes: ...


def check_commitment(name: str) -> str:
    """``name`` if it names a commitment hash; otherwise :class:`InvalidInput`."""
    if name not in COMMITMENTS:
        raise InvalidInput(f"masked inputs are committed with {' or '.join(COMMITMENTS)}")
    return name


def new_hasher(name: str) -> Hasher:
    """A fresh streaming hasher of commitment hash ``name``; feed it ``memoryview`` bytes."""
    if check_commitment(name) == BLAKE3:
        return blake3.blake3()
    return hashlib.sha256()


def vector_digest(vector: npt.NDArray[Any], name: str) -> bytes:
    """The commitment digest of a vector's bytes (C order, native little-endian words)."""
    hasher = new_hasher(name)
    hasher.update(np.ascontiguousarray(vector).data.cast("B"))
    return hasher.digest()
