"""One SecAgg+ round's protocol compute, against the floors that bound it.

All clients and the server run in one process (``simulate_round``); nothing is trained: each
client submits a given float32 vector of length d. For every (n, d, dropout) case, run in its
own forked process so its peak memory is its own, the table reports

* round: client + server compute of the whole round (key agreement, signatures, Shamir,
  quantization, masking, unmasking), with client and server shown apart;
* (a) plaintext: summing the contributors' float32 vectors with ``numpy.add``;
* (c) PRG floor: the mask bytes the round expands (clients' self, pairwise and pad masks, the
  server's unmasking streams) divided by AES-256-CTR throughput measured in the same process
  (``expand`` into a reused 16 MiB buffer), and round / floor (target ≤ 2); beside it the
  SHA-256 time of signing and verifying every masked vector once each (the other work that
  grows with n·d and that no implementation of a signed protocol can skip), and
  round / (PRG floor + SHA-256);
* server masked sum: the bytes of masked input the server took in per second of
  ``receive()`` (signature check over SHA-256 of the vector + modular add), the bare uint32
  accumulation kernel, and ``numpy.add`` on float32 in the same process (target ≥ 50%);
* peak memory: how far the case process's peak RSS rose above its RSS at the start of the
  round (the kernel's high-water mark, reset through /proc/self/clear_refs), beside the size
  of the n input vectors the caller already holds.

(b) Flower. ``--flower`` adds a table comparing our batched Shamir with Flower's
(``flwr.common.secure_aggregation.crypto.shamir``, PyCryptodome underneath) on each case's
sharing workload: 2 secrets per client split into k shares, then the server's reconstructions.
It runs only where ``flwr`` imports, which is never the project venv (flwr is not a project
dependency). Use a separate venv that sees the project's sources::

    python3.11 -m venv /tmp/flwr-venv
    /tmp/flwr-venv/bin/pip install -c constraints.txt flwr safetensors
    PYTHONPATH=src /tmp/flwr-venv/bin/python bench/secagg_round.py --quick --flower

A whole Flower SecAgg+ round needs its simulation engine; ENVIRONMENT.md records one
(Flower 1.42, n = 50, d = 10^6: 6.6 s with 7 neighbours, 35 s all-to-all).

Usage: ``.venv/bin/python bench/secagg_round.py [--quick] [--n ...] [--d ...] [--dropout ...]``.
Writes the table to stdout and to ``bench/results/secagg_round.md``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import multiprocessing
import os
import platform
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from califusion.crypto.prg import expand
from califusion.crypto.shamir import combine_many, split_many
from califusion.fl.secagg import SecAggConfig, Stage, simulate_round

STAGES = (Stage.ADVERTISE_KEYS, Stage.SHARE_KEYS, Stage.MASKED_INPUT, Stage.UNMASK)
RESULTS = Path(__file__).parent / "results" / "secagg_round.md"
GB = 1e9


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
    auth_s: float = 0.0
    mask_gb: float = 0.0
    aes_gbps: float = 0.0
    plain_s: float = 0.0
    ingest_gbps: float = 0.0
    kernel_gbps: float = 0.0
    numpy_add_gbps: float = 0.0
    peak_mib: float = 0.0
    inputs_mib: float = 0.0
    max_error: float = 0.0
    error_bound: float = 0.0
    flower_s: float = 0.0
    ours_shamir_s: float = 0.0


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


def sha256_bytes_per_second() -> float:
    data = np.zeros(4 * 2**20, dtype=np.uint32)
    return data.nbytes / best_time(lambda: hashlib.sha256(data.data.cast("B")).digest(), repeat=5)


def aes_ctr_bytes_per_second() -> float:
    buffer = np.empty(4 * 2**20, dtype=np.uint32)  # 16 MiB, reused
    seed = os.urandom(32)
    return buffer.nbytes / best_time(lambda: expand(seed, buffer.size, out=buffer), repeat=5)


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
    return {pid: STAGES[i % 4] for i, pid in enumerate(chosen)}


def run_case(case: Case, flower: bool) -> Case:
    rng = np.random.default_rng(case.n * 1_000_003 + case.d)
    updates = {}
    for pid in range(case.n):
        vector = rng.standard_normal(case.d, dtype=np.float32)
        vector *= 0.1
        updates[pid] = vector
    config = SecAggConfig.plan(range(case.n), case.d, clip=1.0, max_dropout=case.dropout)
    case.degree, case.threshold = config.degree, config.threshold
    identities = {pid: Ed25519PrivateKey.generate() for pid in range(case.n)}
    dropouts = scattered_dropouts(case.n, case.dropout, seed=case.n)
    aes = aes_ctr_bytes_per_second()
    case.aes_gbps = aes / GB
    case.inputs_mib = case.n * case.d * 4 / 2**20

    before = reset_peak_rss()
    trace = simulate_round(
        config,
        updates,
        round_id=os.urandom(16),
        identities=identities,
        dropouts=dropouts,
        timer=time.perf_counter,
    )
    case.peak_mib = (peak_rss() - before) / 2**20
    result = trace.result
    contributors = sorted(result.contributors)
    case.contributors = len(contributors)
    case.client_s, case.server_s = trace.client_seconds, trace.server_seconds
    case.round_s = case.client_s + case.server_s
    streams = trace.client_mask_streams + trace.server_mask_streams
    mask_bytes = streams * case.d * config.dtype.itemsize
    case.mask_gb = mask_bytes / GB
    case.floor_s = mask_bytes / aes
    # Each masked vector is hashed twice: signed by its client, verified by the server.
    case.auth_s = 2 * len(contributors) * case.d * 4 / sha256_bytes_per_second()

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
    case.ingest_gbps = summed / trace.masked_sum_seconds / GB

    # Correctness: the dequantized secure sum is the plaintext sum up to quantization.
    exact = np.zeros(case.d, dtype=np.float64)
    for pid in contributors:
        exact += np.clip(updates[pid], -1.0, 1.0)
    approx = config.quantizer.dequantize_sum(result.total, len(contributors))
    case.max_error = float(np.abs(approx - exact).max())
    case.error_bound = config.quantizer.error_bound(len(contributors))
    if flower:
        after_sharing = sum(stage is Stage.MASKED_INPUT for stage in dropouts.values())
        compare_shamir(case, case.contributors + after_sharing)
    return case


def compare_shamir(case: Case, reconstructed: int) -> None:
    """(b) The same round's Shamir work with Flower's implementation and with ours.

    Every client splits 2 secrets into k shares; the server reconstructs ``reconstructed``
    secrets (survivors' self-mask seeds and dropped clients' mask keys) from t shares each.
    """
    # flwr is not a project dependency (see the module docstring): import it by name.
    flower_shamir = importlib.import_module("flwr.common.secure_aggregation.crypto.shamir")
    create_shares, combine_shares = flower_shamir.create_shares, flower_shamir.combine_shares

    k, t, n = case.degree, case.threshold, case.n
    secrets = [os.urandom(32) for _ in range(2 * n)]

    def flower_round() -> None:
        shared = [create_shares(secret, t, k) for secret in secrets]
        for shares in shared[:reconstructed]:
            combine_shares(shares[:t])

    def our_round() -> None:
        shared = [split_many(secrets[i : i + 2], t, k) for i in range(0, 2 * n, 2)]
        sets = [pair[0][:t] for pair in shared][:reconstructed]
        combine_many(sets, t)

    case.flower_s = best_time(flower_round, repeat=1, min_seconds=0.0)
    case.ours_shamir_s = best_time(our_round, repeat=1, min_seconds=0.0)


def _child(case: Case, flower: bool, pipe: Connection) -> None:
    pipe.send(asdict(run_case(case, flower)))
    pipe.close()


def run_isolated(case: Case, flower: bool) -> Case:
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(case, flower, sender))
    process.start()
    sender.close()
    fields = receiver.recv()
    process.join()
    return Case(**fields)


def table(cases: list[Case], flower: bool) -> str:
    head = (
        "| n | d | drop | k / t | contrib | round s | client s | server s | PRG floor s "
        "| round/floor | SHA-256 s | round/(floor+SHA) | mask GB | plain f32 sum ms "
        "| server ingest GB/s | u32 sum GB/s "
        "| np.add f32 GB/s | u32/np.add | peak MiB (inputs) | max err / bound |"
    )
    lines = [head, "|" + "---|" * 20]
    for c in cases:
        lines.append(
            f"| {c.n} | {c.d:.0e} | {c.dropout:.0%} | {c.degree} / {c.threshold} "
            f"| {c.contributors} | {c.round_s:.3f} | {c.client_s:.3f} | {c.server_s:.3f} "
            f"| {c.floor_s:.3f} | {c.round_s / c.floor_s:.2f} | {c.auth_s:.3f} "
            f"| {c.round_s / (c.floor_s + c.auth_s):.2f} | {c.mask_gb:.2f} "
            f"| {c.plain_s * 1e3:.2f} | {c.ingest_gbps:.2f} | {c.kernel_gbps:.1f} "
            f"| {c.numpy_add_gbps:.1f} | {c.kernel_gbps / c.numpy_add_gbps:.0%} "
            f"| {c.peak_mib:.0f} ({c.inputs_mib:.0f}) | {c.max_error:.1e} / {c.error_bound:.1e} |"
        )
    if flower:
        lines += [
            "",
            "| n | drop | k / t | Flower Shamir s | ours s | speed-up |",
            "|---|---|---|---|---|---|",
        ]
        seen: set[tuple[int, float]] = set()
        for c in cases:
            if (c.n, c.dropout) in seen:
                continue
            seen.add((c.n, c.dropout))
            lines.append(
                f"| {c.n} | {c.dropout:.0%} | {c.degree} / {c.threshold} | {c.flower_s:.3f} "
                f"| {c.ours_shamir_s:.4f} | {c.flower_s / c.ours_shamir_s:.0f}x |"
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[10, 50, 100, 500])
    parser.add_argument("--d", type=float, nargs="+", default=[1e4, 1e5, 1e6])
    parser.add_argument("--dropout", type=float, nargs="+", default=[0.0, 0.1, 0.3])
    parser.add_argument(
        "--quick", action="store_true", help="n 10 50 100, d 1e4 1e5 1e6, dropout 0 and 30%%"
    )
    parser.add_argument("--flower", action="store_true", help="also time Flower's Shamir")
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
                case = run_isolated(Case(n=n, d=int(d), dropout=dropout), args.flower)
                cases.append(case)
                print(table([case], flower=False).splitlines()[-1], flush=True)
    aes = float(np.median([c.aes_gbps for c in cases]))
    text = "\n".join(
        [
            f"# {header}",
            "",
            f"AES-256-CTR (expand, reused 16 MiB buffer): {aes:.2f} GB/s (median over cases). "
            f"Total bench time {time.perf_counter() - started:.0f} s.",
            "",
            table(cases, args.flower),
            "",
        ]
    )
    print()
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
