"""Where one SecAgg+ round's time goes: per stage (wall), per client/server step, and cProfile.

Runs one ``simulate_round`` like ``bench/secagg_round.py`` does and prints

* the wall time from the round's start to each stage's close (advertise keys, share keys,
  masked input, unmask) and the process CPU time beside the wall time;
* the seconds spent in each client and server step, summed over clients (with several
  workers these are per-thread wall times: they overlap, and include waiting for the GIL);
* with ``--cprofile``, the top functions by own time, the clients then run inline in the
  main thread (``--workers`` is ignored) so that the profile sees them.

Usage: ``.venv/bin/python bench/secagg_profile.py [--n 50] [--d 1e6] [--dropout 0]
[--workers 2] [--cprofile]``. Not part of the test gate; the numbers behind
``bench/results/secagg_round_before_after.md``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from califusion.fl.secagg import SecAggClient, SecAggConfig, SecAggServer, Stage, simulate_round
from califusion.fl.secagg import simulation as simulation_module

STAGES = (Stage.ADVERTISE_KEYS, Stage.SHARE_KEYS, Stage.MASKED_INPUT, Stage.UNMASK)
CLIENT_STEPS = ("start", "_share_keys", "_masked_input", "_unmask")
SERVER_STEPS = ("_on_share_keys", "_on_masked_input", "_on_unmask", "_close_unmask")


@contextmanager
def timed_methods(
    cls: type, names: Iterable[str], label: str, totals: dict[str, float]
) -> Iterator[None]:
    """Add the time of each call of ``cls.<name>`` to ``totals[label.name]``."""
    originals = {name: getattr(cls, name) for name in names}

    def wrap(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                totals[f"{label}.{name}"] += time.perf_counter() - started

        return timed

    for name, method in originals.items():
        setattr(cls, name, wrap(name, method))
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(cls, name, method)


class _Inline:
    """A stand-in for ThreadPoolExecutor that runs each call in the caller's thread."""

    def __init__(self, _workers: int) -> None:
        pass

    def __enter__(self) -> _Inline:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def map(self, function: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        return map(function, items)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--d", type=float, default=1e6)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--cprofile", action="store_true")
    args = parser.parse_args()
    n, d = args.n, int(args.d)
    rng = np.random.default_rng(n)
    updates = {pid: rng.standard_normal(d, dtype=np.float32) * np.float32(0.1) for pid in range(n)}
    config = SecAggConfig.plan(range(n), d, clip=1.0, max_dropout=args.dropout)
    identities = {pid: Ed25519PrivateKey.generate() for pid in range(n)}
    chosen = random.Random(n).sample(range(n), int(args.dropout * n))
    dropouts = {pid: STAGES[i % 4] for i, pid in enumerate(chosen)}

    totals: dict[str, float] = defaultdict(float)
    closed: list[tuple[str, float]] = []
    close = SecAggServer._close

    def close_and_mark(server: SecAggServer, now: float) -> Any:
        stage = server.stage
        out = close(server, now)
        closed.append((str(stage), time.perf_counter()))
        return out

    profiler = cProfile.Profile() if args.cprofile else None
    setattr(SecAggServer, "_close", close_and_mark)  # noqa: B010 - a timing probe
    if profiler is not None:
        setattr(simulation_module, "ThreadPoolExecutor", _Inline)  # noqa: B010
    try:
        with (
            timed_methods(SecAggClient, CLIENT_STEPS, "client", totals),
            timed_methods(SecAggServer, SERVER_STEPS, "server", totals),
        ):
            started, cpu = time.perf_counter(), time.process_time()
            if profiler is not None:
                profiler.enable()
            trace = simulate_round(
                config,
                updates,
                round_id=os.urandom(16),
                identities=identities,
                dropouts=dropouts,
                timer=time.perf_counter,
                workers=1 if profiler is not None else args.workers,
            )
            if profiler is not None:
                profiler.disable()
            wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        setattr(SecAggServer, "_close", close)  # noqa: B010
        setattr(simulation_module, "ThreadPoolExecutor", ThreadPoolExecutor)  # noqa: B010

    workers = "inline (cProfile)" if profiler is not None else f"{args.workers} worker(s)"
    print(
        f"n={n} d={d} k={config.degree} t={config.threshold} dropout={args.dropout:.0%} "
        f"{workers}: wall {wall:.3f} s, process CPU {cpu:.3f} s, mask streams "
        f"{trace.client_mask_streams} client + {trace.server_mask_streams} server, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    previous = started
    for stage, at in closed:
        print(f"  {stage:15s} closed at {at - started:6.3f} s (took {at - previous:.3f} s)")
        previous = at
    for name, seconds in sorted(totals.items(), key=lambda item: -item[1]):
        print(f"  {name:24s} {seconds:.3f} s")
    if profiler is not None:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(25)
        print(text.getvalue())


if __name__ == "__main__":
    main()
