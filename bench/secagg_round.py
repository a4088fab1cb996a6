"""One SecAgg+ round's protocol compute, against the floors that bound it.

All clients and the server run in one process (``simulate_round``); nothing is trained: each
client submits a given float32 vector of length d. For every (n, d, dropout) case, run in its
own forked process so its peak memory is its own, the table reports

* round: wall time of the whole round, start to result (key agreement, signatures, Shamir,
  quantization, masking, unmasking);
* (a) plaintext: summing the contributors' float32 vectors with ``numpy.add``;
* (c) PRG floor, as the issue defines it: the mask bytes the round expanded (clients' self,
  pairwise and pad masks, the server's unmasking streams) divided by the AES-256-CTR
  throughput of ``W`` threads (as many as workers) measured in the same run: ``cryptography``'s
  CTR mode, ``expand`` into reused 16 MiB buffers, timed right after each round over that
  same volume; round / PRG floor (target ≤ 2). The round's masks are that same AES-256
  counter-mode keystream computed through OpenSSL's GCM kernel (``crypto/prg.py``), 2.4×
  faster here, so two stricter floors beside it: the kernel floor expands the same bytes with
  it into reused 16 MiB buffers, the L2 kernel floor into one reused 256 KiB buffer per thread,
  as the masking loop does (the keystream never leaves the cache);
* crypto floor: the kernel floor plus the rest of the cryptography a signed round cannot skip,
  each timed in the same run on W threads: the commitment hash (BLAKE3) of every masked
  vector twice (its client signs the digest, the server checks it), and the Ed25519
  verifications and X25519 agreements the round made (counted during the round: each client
  checks its neighbours' keys and T survivor-set signatures, the server every message);
  round / crypto floor is what the NumPy and Python work costs on top of all of them;
* server masked sum: the server's ingest kernel (``add_and_hash``: modular add + BLAKE3 of
  the vector for its signature check, one pass) on one core, the bare uint32 accumulation
  kernel, and ``numpy.add`` on float32 in the same process (target ≥ 50%);
* peak memory: how far the case process's peak RSS rose above its RSS at the start of the
  round (the kernel's high-water mark, reset through /proc/self/clear_refs), beside the size
  of the n input vectors the caller already holds.

(b) Flower: with ``--flower-python PATH`` (a Python with ``flwr[simulation]`` 1.42, pinned in
``bench/requirements-flower.txt``; flwr is never a project dependency), the same run also
times a whole Flower SecAgg+ round in Flower's own simulation (``bench/flower_secaggplus.py``,
one simulation per n) for every dropout-free case with n ≤ ``--flower-max-n``, at the same n,
d and neighbour count (Flower's ``num_shares`` = k + 1), and reports the speed-up::

    python3.11 -m venv /tmp/flwr-venv
    /tmp/flwr-venv/bin/pip install -r bench/requirements-flower.txt
    .venv/bin/python bench/secagg_round.py --flower-python /tmp/flwr-venv/bin/python

``--neighbours K`` fixes k for every case (the comparison at Flower's own neighbour count);
by default k is planned from n and the dropout rate. ``--workers W`` (default: all CPUs) runs
the clients of each stage in W threads, as W machines would in parallel; the server stays one
sequential state machine but unmasks in W threads. ``--repeat R`` runs R rounds per case,
each followed by its floors, and reports the fastest round and the fastest floors (on a
shared machine, each measured over the same volume at about the same moments); the load
column is the 1-minute load average when the case started.

Usage: ``.venv/bin/python bench/secagg_round.py [--quick] [--n ...] [--d ...] [--dropout ...]
[--neighbours K] [--workers W] [--repeat R] [--flower-python PATH]``.
Writes the table to stdout and to ``bench/results/secagg_round.md``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from califusion.crypto import fastsig
from califusion.crypto.prg import LEGACY_CTR, expand, keystream
from califusion.fl.secagg import SecAggConfig, Stage, simulate_round, vector_digest
from califusion.fl.secagg import _keys as secagg_keys
from califusion.fl.secagg import messages as secagg_messages
from califusion.fl.secagg.server import add_and_hash

STAGES = (
    Stage.ADVERTISE_KEYS,
    Stage.SHARE_KEYS,
    Stage.MASKED_INPUT,
    Stage.CONSISTENCY_CHECK,
    Stage.UNMASK,
)
RESULTS = Path(__file__).parent / "results" / "secagg_round.md"
READING = """\
Reading the table. Below the round lie the costs no signed SecAgg round avoids: expanding the
mask bytes (kernel floor; L2 kernel floor at the in-cache rate the masking loop can reach),
and the crypto floor, which adds hashing every masked vector twice (BLAKE3: its client signs the
digest, the server checks it) and the round's Ed25519 verifications and X25519 agreements —
O(n·k + n·T) of them, T = ⌊n/2⌋ + 1 survivor-set signatures checked by every client, each
timed here on the same threads. round/crypto floor is what quantization (five NumPy passes
over 1 MiB chunks), one modular add per mask stream, Shamir, HKDF, AES-GCM share sealing,
message encoding and the GIL hand-overs of the threads cost on top. The PRG floor is the
issue's: the same mask volume at the throughput of OpenSSL's AES-256-CTR mode (the PRG of
earlier rounds, and the floor of their tables); the round's own kernel computes that
keystream 2.4× faster, which is why the kernel floors lie below it.
"""
GB = 1e9
SIGNED_PAYLOAD = b"m" * 120  # about as long as a survivor-set signature's payload


@dataclass
class Case:
    n: int
    d: int
    dropout: float
    degree: int = 0
    threshold: int = 0
    contributors: int = 0
    round_s: float = 0.0
    client_s: float = 0.0
    server_s: float = 0.0
    floor_s: float = 0.0
    cache_floor_s: float = 0.0
    ctr_floor_s: float = 0.0
    hash_s: float = 0.0
    verifications: int = 0
    agreements: int = 0
    keys_s: float = 0.0
    mask_gb: float = 0.0
    aes_gbps: float = 0.0
    aes_cache_gbps: float = 0.0
    aes_ctr_gbps: float = 0.0
    plain_s: float = 0.0
    ingest_gbps: float = 0.0
    kernel_gbps: float = 0.0
    numpy_add_gbps: float = 0.0
    peak_mib: float = 0.0
    inputs_mib: float = 0.0
    max_error: float = 0.0
    error_bound: float = 0.0
    workers: int = 1
    repeat: int = 1
    load: float = 0.0
    flower_s: float = 0.0

    @property
    def crypto_floor_s(self) -> float:
        return self.floor_s + self.hash_s + self.keys_s


def best_time(work: Callable[[], Any], *, repeat: int = 3, min_seconds: float = 0.05) -> float:
    """Seconds per call of ``work``: best of ``repeat`` batches of at least ``min_seconds``."""
    best = float("inf")
    for _ in range(repeat):
        calls, started = 0, time.perf_counter()
        while True:
            work()
            calls += 1
            elapsed = time.perf_counter() - started
            if elapsed >= min_seconds:
                break
        best = min(best, elapsed / calls)
    return best


def on_threads(work: Callable[[], Any], calls: int, workers: int) -> float:
    """Seconds per call of ``work`` when ``workers`` threads share ``calls`` calls."""

    def share(_: int) -> None:
        for _ in range(max(1, calls // workers)):
            work()

    with ThreadPoolExecutor(workers) as pool:
        started = time.perf_counter()
        for _ in pool.map(share, range(workers)):
            pass
        elapsed = time.perf_counter() - started
    return elapsed / (max(1, calls // workers) * workers)


def expansion_seconds(total_bytes: int, workers: int, buffer_bytes: int, prg: str) -> float:
    """Wall time for ``workers`` threads to expand ``total_bytes`` of mask stream between them,
    each into one reused buffer of ``buffer_bytes`` (``expand`` into 16 MiB: the PRG floor with
    the CTR mode, the kernel floor with the round's PRG; a 256 KiB buffer that stays in L2, as
    the masking loop uses it: the L2 kernel floor). Timed over the
    round's whole mask volume, right after the round, so both see the same share of a busy
    machine."""
    words = buffer_bytes // 4
    # Buffers per thread: the round's volume, but at least 64 MiB so that small volumes are
    # not dominated by starting the threads (the time is then scaled to the volume).
    per_worker = max(-(-total_bytes // (workers * buffer_bytes)), 2**26 // buffer_bytes)

    def one(_: int) -> None:
        buffer = np.empty(words, dtype=np.uint32)
        seed = os.urandom(32)
        if buffer_bytes > 256 * 1024:
            for _ in range(per_worker):
                expand(seed, words, out=buffer, prg=prg)
            return
        # the masking loop's own kernel, without its add: keystream into a 256 KiB scratch,
        # a fresh stream every GiB (a stream holds at most 64 GiB)
        zeros, scratch = bytes(buffer_bytes), bytearray(buffer_bytes + 16)
        per_stream = 2**30 // buffer_bytes
        for done in range(per_worker):
            if done % per_stream == 0:
                update_into = keystream(os.urandom(32), prg).update_into
            update_into(zeros, scratch)

    with ThreadPoolExecutor(workers) as pool:
        started = time.perf_counter()
        for _ in pool.map(one, range(workers)):
            pass
        elapsed = time.perf_counter() - started
    return elapsed * total_bytes / (per_worker * workers * buffer_bytes)


@contextmanager
def counted_key_operations() -> Iterator[dict[str, int]]:
    """Count the Ed25519 verifications and X25519 agreements a round makes (the counting
    wrappers cost ~0.1 µs a call, nothing next to the 20-45 µs of the operations)."""
    counts = {"verify": 0, "agree": 0}
    probes = ((secagg_messages, "verify_ed25519", "verify"), (secagg_keys, "x25519", "agree"))
    originals = [getattr(module, name) for module, name, _ in probes]

    def counting(original: Callable[..., Any], kind: str) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            counts[kind] += 1
            return original(*args)

        return call

    for (module, name, kind), original in zip(probes, originals, strict=True):
        setattr(module, name, counting(original, kind))
    try:
        yield counts
    finally:
        for (module, name, _), original in zip(probes, originals, strict=True):
            setattr(module, name, original)


def key_operation_seconds(verifications: int, agreements: int, workers: int) -> float:
    """What ``verifications`` libsodium Ed25519 checks and ``agreements`` X25519 agreements
    cost on ``workers`` threads, timed now."""
    signer = Ed25519PrivateKey.generate()
    message = SIGNED_PAYLOAD
    signature = signer.sign(message)
    public = signer.public_key().public_bytes_raw()
    peer = fastsig.x25519_public(os.urandom(32))
    own = os.urandom(32)
    verify_s = min(
        on_threads(lambda: fastsig.verify_ed25519(public, signature, message), 2000, workers)
        for _ in range(3)
    )
    agree_s = min(on_threads(lambda: fastsig.x25519(own, peer), 2000, workers) for _ in range(3))
    return verifications * verify_s + agreements * agree_s


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0); return RSS bytes."""
    with open("/proc/self/clear_refs", "w") as clear_refs:
        clear_refs.write("5")
    return _status_kib("VmRSS") * 1024


def peak_rss() -> int:
    return _status_kib("VmHWM") * 1024


def scattered_dropouts(n: int, dropout: float, seed: int) -> dict[int, Stage]:
    chosen = random.Random(seed).sample(range(n), int(dropout * n))
    return {pid: STAGES[i % len(STAGES)] for i, pid in enumerate(chosen)}


def run_case(case: Case, neighbours: int | None) -> Case:
    rng = np.random.default_rng(case.n * 1_000_003 + case.d)
    updates = {}
    for pid in range(case.n):
        vector = rng.standard_normal(case.d, dtype=np.float32)
        vector *= 0.1
        updates[pid] = vector
    config = SecAggConfig.plan(
        range(case.n), case.d, clip=1.0, max_dropout=case.dropout, degree=neighbours
    )
    case.degree, case.threshold = config.degree, config.threshold
    identities = {pid: Ed25519PrivateKey.generate() for pid in range(case.n)}
    dropouts = scattered_dropouts(case.n, case.dropout, seed=case.n)
    case.load = os.getloadavg()[0]
    case.inputs_mib = case.n * case.d * 4 / 2**20

    def one_round() -> Any:
        return simulate_round(
            config,
            updates,
            round_id=os.urandom(16),
            identities=identities,
            dropouts=dropouts,
            timer=time.perf_counter,
            workers=case.workers,
        )

    # The round's count of key operations (the same in every round of the case).
    with counted_key_operations() as counts:
        one_round()
    case.verifications, case.agreements = counts["verify"], counts["agree"]

    # The fastest of ``repeat`` rounds (fresh round id each), each followed by the floors
    # over the same volumes: on a shared machine all of them see the same moments.
    trace = None
    floor_s = cache_floor_s = ctr_floor_s = hash_s = keys_s = float("inf")
    sample = updates[0]  # the hash costs per byte, whatever the words
    for attempt in range(case.repeat):
        before = reset_peak_rss()
        run = one_round()
        if attempt == 0:
            case.peak_mib = (peak_rss() - before) / 2**20
        if trace is None or run.wall_seconds < trace.wall_seconds:
            trace = run
        streams = run.client_mask_streams + run.server_mask_streams
        mask_bytes = streams * case.d * config.dtype.itemsize
        w = case.workers
        floor_s = min(floor_s, expansion_seconds(mask_bytes, w, 16 * 2**20, config.prg))
        cache_floor_s = min(cache_floor_s, expansion_seconds(mask_bytes, w, 2**18, config.prg))
        ctr_floor_s = min(ctr_floor_s, expansion_seconds(mask_bytes, w, 16 * 2**20, LEGACY_CTR))
        # Each masked vector is hashed twice: signed by its client, checked by the server.
        contributors_bytes = 2 * len(run.result.contributors) * case.d * config.dtype.itemsize
        per_vector = on_threads(lambda: vector_digest(sample, config.commitment), 16, w)
        hash_s = min(hash_s, per_vector * contributors_bytes / sample.nbytes)
        keys_s = min(keys_s, key_operation_seconds(case.verifications, case.agreements, w))
    assert trace is not None
    result = trace.result
    contributors = sorted(result.contributors)
    case.contributors = len(contributors)
    case.client_s, case.server_s = trace.client_seconds, trace.server_seconds
    case.round_s = trace.wall_seconds  # start to result: the accounts overlap with workers
    case.mask_gb = mask_bytes / GB
    case.floor_s, case.cache_floor_s, case.ctr_floor_s = floor_s, cache_floor_s, ctr_floor_s
    case.hash_s, case.keys_s = hash_s, keys_s
    case.aes_gbps, case.aes_cache_gbps = mask_bytes / floor_s / GB, mask_bytes / cache_floor_s / GB
    case.aes_ctr_gbps = mask_bytes / ctr_floor_s / GB

    # (a) plaintext float32 summation of the same vectors; numpy.add bandwidth from the same.
    accumulator = np.zeros(case.d, dtype=np.float32)

    def plain_sum() -> None:
        accumulator.fill(0)
        for pid in contributors:
            np.add(accumulator, updates[pid], out=accumulator)

    case.plain_s = best_time(plain_sum)
    summed = len(contributors) * case.d * 4
    case.numpy_add_gbps = summed / case.plain_s / GB
    words = np.zeros(case.d, dtype=np.uint32)
    as_words = [updates[pid].view(np.uint32) for pid in contributors]

    def modular_sum() -> None:
        words.fill(0)
        for vector in as_words:
            np.add(words, vector, out=words)

    case.kernel_gbps = summed / best_time(modular_sum) / GB
    # The server's ingest kernel alone (modular add + commitment hash for the signature check,
    # one pass per vector), on one core: inside the round it shares the cores with the clients.
    masked_total = np.zeros(case.d, dtype=np.uint32)

    def ingest() -> None:
        for vector in as_words:
            add_and_hash(masked_total, vector, config.commitment)

    case.ingest_gbps = summed / best_time(ingest) / GB

    # Correctness: the dequantized secure sum is the plaintext sum up to quantization.
    exact = np.zeros(case.d, dtype=np.float64)
    for pid in contributors:
        exact += np.clip(updates[pid], -1.0, 1.0)
    approx = config.quantizer.dequantize_sum(result.total, len(contributors))
    case.max_error = float(np.abs(approx - exact).max())
    case.error_bound = config.quantizer.error_bound(len(contributors))
    return case


def _child(case: Case, neighbours: int | None, pipe: Connection) -> None:
    pipe.send(asdict(run_case(case, neighbours)))
    pipe.close()


def run_isolated(case: Case, neighbours: int | None) -> Case:
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(case, neighbours, sender))
    process.start()
    sender.close()
    fields = receiver.recv()
    process.join()
    return Case(**fields)


def run_flower(python: str, cases: list[Case], max_n: int, timeout: float) -> None:
    """(b) Flower's SecAgg+ in its own simulation, for the dropout-free cases (in place)."""
    script = Path(__file__).with_name("flower_secaggplus.py")
    by_n: dict[int, list[Case]] = {}
    for case in cases:
        if case.dropout == 0 and case.n <= max_n:
            by_n.setdefault(case.n, []).append(case)
    for n, group in sorted(by_n.items()):
        sizes = sorted({c.d for c in group})
        command = [python, str(script), "--n", str(n), "--neighbours", str(group[0].degree)]
        command += ["--d", *(str(d) for d in sizes)]
        print(f"Flower SecAgg+ simulation: n={n}, k={group[0].degree}, d={sizes}", flush=True)
        try:
            done = subprocess.run(
                command, check=False, capture_output=True, text=True, timeout=timeout
            )
        except subprocess.TimeoutExpired:
            print(f"  timed out after {timeout:.0f} s", flush=True)
            continue
        for line in done.stdout.splitlines():
            if line.startswith("{"):
                found = json.loads(line)
                for case in group:
                    if case.d == found["d"] and found["round_s"] is not None:
                        case.flower_s = float(found["round_s"])
        if done.returncode:
            print(f"  Flower failed: {done.stderr[-2000:]}", flush=True)


def table(cases: list[Case]) -> str:
    """The targets' table: the round against its floors, the sum against numpy.add, Flower."""
    head = (
        "| n | d | drop | k / t | contrib | round s | kernel floor s | round/kernel floor "
        "| L2 kernel floor s | round/L2 kernel floor | PRG floor (AES-CTR) s | round/PRG floor "
        "| crypto floor s "
        "| round/crypto floor | u32 sum / np.add | ingest (add+BLAKE3) GB/s | peak MiB (inputs) "
        "| max err / bound | Flower s | Flower/ours |"
    )
    lines = [head, "|" + "---|" * 20]
    for c in cases:
        flower = f"{c.flower_s:.2f} | {c.flower_s / c.round_s:.0f}x" if c.flower_s else "- | -"
        lines.append(
            f"| {c.n} | {c.d:.0e} | {c.dropout:.0%} | {c.degree} / {c.threshold} "
            f"| {c.contributors} | {c.round_s:.3f} | {c.floor_s:.3f} "
            f"| {c.round_s / c.floor_s:.2f} | {c.cache_floor_s:.3f} "
            f"| {c.round_s / c.cache_floor_s:.2f} | {c.ctr_floor_s:.3f} "
            f"| {c.round_s / c.ctr_floor_s:.2f} | {c.crypto_floor_s:.3f} "
            f"| {c.round_s / c.crypto_floor_s:.2f} | {c.kernel_gbps / c.numpy_add_gbps:.0%} "
            f"| {c.ingest_gbps:.2f} | {c.peak_mib:.0f} ({c.inputs_mib:.0f}) "
            f"| {c.max_error:.1e} / {c.error_bound:.1e} | {flower} |"
        )
    return "\n".join(lines)


def detail_table(cases: list[Case]) -> str:
    """Where the floors come from, and the accounts of the round."""
    head = (
        "| n | d | drop | client s | server s | mask GB | kernel GB/s | L2 kernel GB/s "
        "| AES-CTR GB/s "
        "| BLAKE3 s | Ed25519 checks | X25519 | keys s | plain f32 sum ms | u32 sum GB/s "
        "| np.add f32 GB/s | load |"
    )
    lines = [head, "|" + "---|" * 17]
    for c in cases:
        lines.append(
            f"| {c.n} | {c.d:.0e} | {c.dropout:.0%} | {c.client_s:.3f} | {c.server_s:.3f} "
            f"| {c.mask_gb:.2f} | {c.aes_gbps:.1f} | {c.aes_cache_gbps:.1f} "
            f"| {c.aes_ctr_gbps:.1f} | {c.hash_s:.3f} | {c.verifications} | {c.agreements} "
            f"| {c.keys_s:.3f} | {c.plain_s * 1e3:.2f} | {c.kernel_gbps:.1f} "
            f"| {c.numpy_add_gbps:.1f} | {c.load:.1f} |"
        )
    return "\n".join(lines)


def machine() -> str:
    load = os.getloadavg()
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, NumPy {np.__version__}, "
        f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10, 50, 100, 500])
    parser.add_argument("--d", type=float, nargs="+", default=[1e4, 1e5, 1e6])
    parser.add_argument("--dropout", type=float, nargs="+", default=[0.0, 0.1, 0.3])
    parser.add_argument("--neighbours", type=int, help="k for every case (default: planned)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds per case; the fastest is reported"
    )
    parser.add_argument(
        "--quick", action="store_true", help="n 10 50 100, d 1e4 1e5 1e6, dropout 0 and 30%%"
    )
    parser.add_argument("--flower-python", help="a Python with flwr[simulation] 1.42")
    parser.add_argument("--flower-max-n", type=int, default=100)
    parser.add_argument("--flower-timeout", type=float, default=1800.0)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.n, args.d, args.dropout = [10, 50, 100], [1e4, 1e5, 1e6], [0.0, 0.3]
    started = time.perf_counter()
    header = f"SecAgg+ round compute — {machine()}"
    print(header)
    cases: list[Case] = []
    for n in args.n:
        for dropout in args.dropout:
            for d in args.d:
                case = Case(
                    n=n, d=int(d), dropout=dropout, workers=args.workers, repeat=args.repeat
                )
                case = run_isolated(case, args.neighbours)
                cases.append(case)
                print(table([case]).splitlines()[-1], flush=True)
    if args.flower_python:
        run_flower(args.flower_python, cases, args.flower_max_n, args.flower_timeout)
    aes = float(np.median([c.aes_gbps for c in cases]))
    aes_cache = float(np.median([c.aes_cache_gbps for c in cases]))
    aes_ctr = float(np.median([c.aes_ctr_gbps for c in cases]))
    k = f"k = {args.neighbours} for every case" if args.neighbours else "k planned per case"
    text = "\n".join(
        [
            f"# {header}",
            "",
            "    .venv/bin/python bench/secagg_round.py " + " ".join(sys.argv[1:]),
            "",
            f"{k}; clients of a stage in {args.workers} thread(s), the server unmasking in "
            f"as many; fastest of {args.repeat} round(s) per case. Mask stream with "
            f"{args.workers} thread(s): {aes:.1f} GB/s expanding into reused 16 MiB buffers "
            f"(kernel floor), {aes_cache:.1f} GB/s into a reused 256 KiB buffer (L2 kernel "
            f"floor); OpenSSL's AES-256-CTR mode {aes_ctr:.1f} GB/s into 16 MiB buffers (PRG "
            f"floor); medians over "
            f"cases. Total bench time {time.perf_counter() - started:.0f} s.",
            "",
            table(cases),
            "",
            detail_table(cases),
            "",
            READING,
        ]
    )
    print()
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
