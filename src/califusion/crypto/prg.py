"""Deterministic mask expansion: AES-256 counter-mode keystreams as NumPy words.

Why hand-written: SecAgg masks must be bit-identical on every client and on the server, and
fast enough that masking costs about what generating the bytes costs. No library offers a
seeded, specified, vectorized mask stream, so this module fixes one. A stream is named by its
32-byte seed (always derived with HKDF-SHA256 for one purpose, :func:`derive_seed`, so one key
never drives two streams) and by the round's PRG, one of:

* ``aes256-gcm-keystream`` (:data:`GCM_KEYSTREAM`, current rounds): AES-256 in counter mode
  with key = seed over the counter blocks 0^96 ‖ [c]_32, c = 2, 3, … — exactly the keystream
  AES-256-GCM encrypts with under a zero 96-bit IV. It is computed by encrypting zeros through
  ``cryptography``'s GCM, whose OpenSSL kernel is VAES/AVX-512 with GHASH stitched in: 19 GB/s
  on one core of the reference machine against 7.9 GB/s for its CTR mode, which has no such
  kernel (``bench/results/secagg_round.md``). The tag is never finalized or used; the
  ciphertext of zeros is the keystream. One stream holds at most 2^32 − 2 blocks (64 GiB);
* ``aes256-ctr`` (:data:`LEGACY_CTR`, rounds recorded before): AES-256-CTR from the all-zero
  128-bit counter block, through ``cryptography``'s CTR mode; kept so their audits replay.

Words are read little-endian (``uint32`` for modulus 2^32, ``uint64`` for 2^64), and modular
arithmetic is NumPy's native unsigned wrap-around.

Buffers. AES runs at these speeds only when the output buffer is reused: ``update()`` of a
fresh 64 MiB ``bytes`` pays page faults on every call. :func:`expand` therefore writes with
``update_into`` straight into the caller's array, and :func:`accumulate` — the workhorse of
masking and unmasking — streams every seed through one cache-sized scratch buffer and adds or
subtracts it in place, chunk by chunk, so the vector being masked stays in cache while all its
masks pass through it. Blocks of 256 KiB make each call ~15-35 µs, so the GIL hand-overs of
several threads masking at once (clients of a simulation) cost little, while a block and the
scratch still fit in a core's L2 cache. :func:`accumulate` with ``workers`` gives each thread
its own share of the streams over the whole vector (streams are not seekable), adding each
thread's block sums into the target under a per-block lock: no copy of the vector per thread.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, Protocol

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from califusion.core.errors import InvalidInput

SEED_BYTES = 32
MASK_DTYPES: tuple[np.dtype[Any], ...] = (np.dtype(np.uint32), np.dtype(np.uint64))
GCM_KEYSTREAM: Final = "aes256-gcm-keystream"
LEGACY_CTR: Final = "aes256-ctr"
PRGS: Final = (GCM_KEYSTREAM, LEGACY_CTR)
MAX_STREAM_BYTES: Final = (2**32 - 2) * 16  # GCM's 32-bit block counter, from 2
_CHUNK_BYTES = 256 * 1024
_ZEROS = memoryview(bytes(_CHUNK_BYTES + 16))  # read-only source of the keystream
_INFO_PREFIX = b"califusion/prg/v1/"

MaskArray = npt.NDArray[np.unsignedinteger[Any]]

# Mask words are defined as little-endian; native NumPy words match that on every host we run.
if sys.byteorder != "little":  # pragma: no cover - no such host in use
    raise ImportError("califusion.crypto.prg assumes a little-endian host")


def check_prg(name: str) -> str:
    """``name`` if it names a mask PRG; otherwise :class:`InvalidInput`."""
    if name not in PRGS:
        raise InvalidInput(f"mask streams are {' or '.join(PRGS)}, got {name!r}")
    return name


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
    prg: str = GCM_KEYSTREAM,
) -> MaskArray:
    """The first ``n_words`` words of the mask stream of ``seed``.

    With ``out`` (a C-contiguous 1-D array of ``n_words`` words of ``dtype``) the stream is
    written into it and it is returned; reuse one buffer for large masks.
    """
    word = _mask_dtype(dtype)
    if n_words < 0:
        raise InvalidInput(f"n_words must be non-negative, got {n_words}")
    _check_length(n_words * word.itemsize, prg)
    if out is None:
        out = np.empty(n_words, dtype=word)
    else:
        _check_target(out)
        if out.dtype != word or out.shape != (n_words,):
            raise InvalidInput(f"out must hold {n_words} words of {word}")
    encryptor = keystream(seed, prg)
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
    """A streaming hash (``blake3.blake3()``): fed each finished chunk while it is in cache."""

    def update(self, data: Any, /) -> Any: ...


class MaskStreams:
    """Several mask streams advanced together over consecutive blocks of one vector.

    ``apply(block)`` adds (or subtracts) the next ``len(block)`` words of every stream to
    ``block`` in place, one cache-sized step at a time, so ``block`` stays in cache while all
    its masks pass through the scratch. :func:`accumulate` runs it over a whole vector.
    """

    def __init__(
        self,
        add: Sequence[bytes] = (),
        subtract: Sequence[bytes] = (),
        *,
        dtype: npt.DTypeLike = np.uint32,
        prg: str = GCM_KEYSTREAM,
    ) -> None:
        self.dtype = _mask_dtype(dtype)
        self.prg = check_prg(prg)
        self._streams = [(keystream(seed, prg).update_into, True) for seed in add]
        self._streams += [(keystream(seed, prg).update_into, False) for seed in subtract]
        self._scratch = bytearray(_CHUNK_BYTES + 16)
        self._words = np.frombuffer(
            self._scratch, dtype=self.dtype, count=_CHUNK_BYTES // self.dtype.itemsize
        )
        self._position = 0

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
        self._position += block.nbytes
        _check_length(self._position, self.prg)
        step = self._words.size
        scratch, words = self._scratch, self._words
        for low in range(0, block.size, step):
            part = block[low : low + step]
            mask = words[: part.size]
            zeros = _ZEROS[: part.nbytes]
            for update_into, plus in self._streams:
                update_into(zeros, scratch)
                if plus:
                    np.add(part, mask, out=part)
                else:
                    np.subtract(part, mask, out=part)


def accumulate(
    out: MaskArray,
    add: Sequence[bytes] = (),
    subtract: Sequence[bytes] = (),
    *,
    hasher: Hasher | None = None,
    workers: int = 1,
    prg: str = GCM_KEYSTREAM,
) -> MaskArray:
    """In place: ``out += sum(expand(s) for s in add) - sum(expand(s) for s in subtract)``.

    Arithmetic wraps modulo 2^32 or 2^64 with ``out``'s dtype. With ``hasher``, each chunk of
    the result is hashed right after its last mask is added, so hashing the masked vector
    costs no extra pass over memory (the digest equals hashing the whole result). With
    ``workers`` > 1 (and no hasher, which needs the chunks in order) the streams are dealt out
    to that many threads, each summing its own over every block and adding the block sum into
    ``out`` under the block's lock; the result is the same. Returns ``out``.
    """
    _check_target(out)
    if workers < 1:
        raise InvalidInput(f"workers must be at least 1, got {workers}")
    streams = [(seed, True) for seed in add] + [(seed, False) for seed in subtract]
    parts = min(workers, len(streams)) if hasher is None else 1
    if parts > 1:
        step = _CHUNK_BYTES // out.itemsize
        locks = [threading.Lock() for _ in range(0, out.size, step)]
        groups = [streams[i::parts] for i in range(parts)]
        with ThreadPoolExecutor(parts) as pool:
            for _ in pool.map(lambda group: _accumulate_group(out, group, locks, prg), groups):
                pass
        return out
    masks = MaskStreams(add, subtract, dtype=out.dtype, prg=prg)
    step = masks.chunk_words
    for low in range(0, out.size, step):
        block = out[low : low + step]
        if len(masks):
            masks.apply(block)
        if hasher is not None:
            hasher.update(block.data.cast("B"))
    return out


def _accumulate_group(
    out: MaskArray,
    group: list[tuple[bytes, bool]],
    locks: list[threading.Lock],
    prg: str,
) -> None:
    """One thread's share of :func:`accumulate`: its streams' sum, block by block, into out."""
    masks = MaskStreams(
        [seed for seed, plus in group if plus],
        [seed for seed, plus in group if not plus],
        dtype=out.dtype,
        prg=prg,
    )
    step = masks.chunk_words
    total = np.empty(step, dtype=out.dtype)
    for index, low in enumerate(range(0, out.size, step)):
        target = out[low : low + step]
        block = total[: target.size]
        block.fill(0)
        masks.apply(block)
        with locks[index]:
            np.add(target, block, out=target)


def keystream(seed: bytes, prg: str = GCM_KEYSTREAM) -> CipherContext:
    """The cipher context whose ``update_into(zeros, buffer)`` writes the next bytes of the
    stream of ``seed`` (what :func:`expand` and :class:`MaskStreams` read from)."""
    if len(seed) != SEED_BYTES:
        raise InvalidInput(f"a PRG seed is {SEED_BYTES} bytes, got {len(seed)}")
    # Zero IVs are safe: every seed keys exactly one stream (see the module docstring).
    mode = modes.GCM(bytes(12)) if check_prg(prg) == GCM_KEYSTREAM else modes.CTR(bytes(16))
    return Cipher(algorithms.AES(seed), mode).encryptor()


def _check_length(n_bytes: int, prg: str) -> None:
    if prg == GCM_KEYSTREAM and n_bytes > MAX_STREAM_BYTES:
        raise InvalidInput(f"a mask stream holds at most {MAX_STREAM_BYTES} bytes")


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
