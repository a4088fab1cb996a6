"""Deterministic mask expansion: AES-256-CTR keystreams as NumPy words.

Why hand-written: SecAgg masks must be bit-identical on every client and on the server, and
fast enough that masking costs about what generating the bytes costs. No library offers a
seeded, specified, vectorized mask stream, so this module fixes one:

* the keystream of AES-256-CTR with ``key = seed`` and an all-zero initial counter block,
  read as little-endian unsigned words (``uint32`` for modulus 2^32, ``uint64`` for 2^64);
* seeds are 32 bytes and always derived with HKDF-SHA256 for one purpose
  (:func:`derive_seed`), so one key never drives two streams and the fixed counter is safe.

AES-CTR through ``cryptography`` (OpenSSL with AES-NI/VAES) runs at several GB/s, but only
when the output buffer is reused: ``update()`` of a fresh 64 MiB ``bytes`` pays page faults on
every call. :func:`expand` therefore writes with ``update_into`` straight into the caller's
array, and :func:`accumulate` — the workhorse of masking and unmasking — streams every seed
through one cache-sized scratch buffer and adds or subtracts it in place, chunk by chunk, so
the vector being masked stays in cache while all its masks pass through it.
Modular arithmetic is NumPy's native unsigned wrap-around: ``uint32`` arithmetic is mod 2^32.

Chunk size. OpenSSL and NumPy release the GIL for each call, and a call that returns must
take it back; with several threads masking at once (clients of a simulation, the halves of an
unmasking pass) every return can wait on another thread. Blocks of 256 KiB make each AES call
~30 µs, so those hand-overs cost little (128 KiB blocks lost a fifth of the second core),
while a block, the scratch and a quantizer's buffer still fit in a core's L2 cache.
:func:`accumulate` with ``workers`` cuts one vector into that many parts, each with its own
streams started at its first word (CTR seeks), so unmasking uses every core.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from califusion.core.errors import InvalidInput

SEED_BYTES = 32
MASK_DTYPES: tuple[np.dtype[Any], ...] = (np.dtype(np.uint32), np.dtype(np.uint64))
_INITIAL_COUNTER = bytes(16)
_CHUNK_BYTES = 256 * 1024
_ZEROS = memoryview(bytes(_CHUNK_BYTES + 16))  # read-only source of the keystream
_INFO_PREFIX = b"califusion/prg/v1/"

MaskArray = npt.NDArray[np.unsignedinteger[Any]]

# Mask words are defined as little-endian; native NumPy words match that on every host we run.
if sys.byteorder != "little":  # pragma: no cover - no such host in use
    raise ImportError("califusion.crypto.prg assumes a little-endian host")


def derive_seed(key_material: bytes, purpose: str, context: bytes = b"") -> bytes:
    """A 32-byte PRG seed bound to ``purpose`` and ``context`` (HKDF-SHA256, no salt).

    ``purpose`` names the use (``"secagg/self-mask"``); ``context`` carries what makes the
    stream unique (round id, client ids). Distinct (purpose, context) give independent seeds.
    """
    if not purpose or "\x00" in purpose:
        raise InvalidInput("a PRG purpose is a non-empty string without NUL")
    info = _INFO_PREFIX + purpose.encode("utf-8") + b"\x00" + context
    return HKDF(algorithm=hashes.SHA256(), length=SEED_BYTES, salt=None, info=info).derive(
        key_material
    )


def expand(
    seed: bytes,
    n_words: int,
    dtype: npt.DTypeLike = np.uint32,
    *,
    out: MaskArray | None = None,
) -> MaskArray:
    """The first ``n_words`` words of the mask stream of ``seed``.

    With ``out`` (a C-contiguous 1-D array of ``n_words`` words of ``dtype``) the stream is
    written into it and it is returned; reuse one buffer for large masks.
    """
    word = _mask_dtype(dtype)
    if n_words < 0:
        raise InvalidInput(f"n_words must be non-negative, got {n_words}")
    if out is None:
        out = np.empty(n_words, dtype=word)
    else:
        _check_target(out)
        if out.dtype != word or out.shape != (n_words,):
            raise InvalidInput(f"out must hold {n_words} words of {word}")
    encryptor = _encryptor(seed)
    dest = out.data.cast("B")
    total = len(dest)
    offset = 0
    # The buffer passed to update_into always reaches to the end of ``out``, so it is longer
    # than the data except for the final chunk, which goes through a small scratch buffer:
    # that keeps within update_into's documented size rule (data + block size - 1).
    while total - offset > _CHUNK_BYTES + 16:
        offset += encryptor.update_into(_ZEROS[:_CHUNK_BYTES], dest[offset:])
    tail = total - offset
    if tail:
        scratch = bytearray(tail + 16)
        written = encryptor.update_into(_ZEROS[:tail], scratch)
        dest[offset:] = scratch[:written]
    return out


class Hasher(Protocol):
    """A streaming hash (``hashlib.sha256()``): fed each finished chunk while it is in cache."""

    def update(self, data: Any, /) -> None: ...


class MaskStreams:
    """Several mask streams advanced together over consecutive blocks of one vector.

    ``apply(block)`` adds (or subtracts) the next ``len(block)`` words of every stream to
    ``block`` in place. :func:`accumulate` is one pass of it over a whole vector; a caller that
    produces its vector chunk by chunk (a client quantizing its update) masks and hashes each
    chunk while it is still in cache. ``start_word`` begins every stream that many words in
    (a multiple of 16 bytes: the CTR counter is set to the block), so two workers can mask
    two halves of one vector.
    """

    def __init__(
        self,
        add: Sequence[bytes] = (),
        subtract: Sequence[bytes] = (),
        *,
        dtype: npt.DTypeLike = np.uint32,
        start_word: int = 0,
    ) -> None:
        self.dtype = _mask_dtype(dtype)
        offset = start_word * self.dtype.itemsize
        if start_word < 0 or offset % 16:
            raise InvalidInput("mask streams start at a multiple of 16 bytes")
        counter = (offset // 16).to_bytes(16, "big")
        self._streams = [(_encryptor(seed, counter), True) for seed in add]
        self._streams += [(_encryptor(seed, counter), False) for seed in subtract]
        self._scratch = bytearray(_CHUNK_BYTES + 16)
        self._words = np.frombuffer(
            self._scratch, dtype=self.dtype, count=_CHUNK_BYTES // self.dtype.itemsize
        )

    def __len__(self) -> int:
        return len(self._streams)

    @property
    def chunk_words(self) -> int:
        """Words per internal step: blocks of this size (or a multiple) use it best."""
        return self._words.size

    def apply(self, block: MaskArray) -> None:
        """Add the streams' next ``len(block)`` words to ``block`` (mod 2^32 or 2^64)."""
        if block.dtype != self.dtype:
            raise InvalidInput(f"mask words are {self.dtype}, the block is {block.dtype}")
        step = self._words.size
        for low in range(0, block.size, step):
            part = block[low : low + step]
            words = self._words[: part.size]
            zeros = _ZEROS[: part.size * part.itemsize]
            for encryptor, plus in self._streams:
                encryptor.update_into(zeros, self._scratch)
                if plus:
                    np.add(part, words, out=part)
                else:
                    np.subtract(part, words, out=part)


def accumulate(
    out: MaskArray,
    add: Sequence[bytes] = (),
    subtract: Sequence[bytes] = (),
    *,
    hasher: Hasher | None = None,
    workers: int = 1,
) -> MaskArray:
    """In place: ``out += sum(expand(s) for s in add) - sum(expand(s) for s in subtract)``.

    Arithmetic wraps modulo 2^32 or 2^64 with ``out``'s dtype. With ``hasher``, each chunk of
    the result is hashed right after its last mask is added, so hashing the masked vector
    costs no extra pass over memory (the digest equals hashing the whole result). With
    ``workers`` > 1 (and no hasher, which needs the chunks in order) the vector is cut into
    that many parts masked in parallel threads; the result is the same. Returns ``out``.
    """
    _check_target(out)
    if workers < 1:
        raise InvalidInput(f"workers must be at least 1, got {workers}")
    step = _CHUNK_BYTES // out.itemsize
    parts = min(workers, -(-out.size // step)) if hasher is None and (add or subtract) else 1
    if parts > 1:
        # Equal parts, each starting at a multiple of 16 bytes (where a CTR stream can start).
        align = 16 // out.itemsize
        per_part = -(-out.size // (parts * align)) * align
        starts = range(0, out.size, per_part)
        with ThreadPoolExecutor(parts) as pool:
            for _ in pool.map(
                lambda low: _accumulate_part(out, add, subtract, low, per_part), starts
            ):
                pass
        return out
    streams = MaskStreams(add, subtract, dtype=out.dtype)
    for low in range(0, out.size, step):
        block = out[low : low + step]
        if len(streams):
            streams.apply(block)
        if hasher is not None:
            hasher.update(block)
    return out


def _accumulate_part(
    out: MaskArray, add: Sequence[bytes], subtract: Sequence[bytes], low: int, size: int
) -> None:
    MaskStreams(add, subtract, dtype=out.dtype, start_word=low).apply(out[low : low + size])


def _encryptor(seed: bytes, counter: bytes = _INITIAL_COUNTER) -> CipherContext:
    if len(seed) != SEED_BYTES:
        raise InvalidInput(f"a PRG seed is {SEED_BYTES} bytes, got {len(seed)}")
    cipher = Cipher(algorithms.AES(seed), modes.CTR(counter))
    return cipher.encryptor()


def _mask_dtype(dtype: npt.DTypeLike) -> np.dtype[Any]:
    word = np.dtype(dtype)
    if word not in MASK_DTYPES:
        raise InvalidInput(f"mask words are uint32 or uint64, got {word}")
    return word


def _check_target(out: MaskArray) -> None:
    if out.dtype not in MASK_DTYPES:
        raise InvalidInput(f"mask words are uint32 or uint64, got {out.dtype}")
    if out.ndim != 1 or not out.flags.c_contiguous or not out.flags.writeable:
        raise InvalidInput("masks are written into a writable, C-contiguous 1-D array")
