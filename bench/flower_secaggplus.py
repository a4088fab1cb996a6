"""One Flower SecAgg+ round in Flower's own simulation, for comparison with ours.

Benchmark-only: it needs ``flwr[simulation]`` (pinned in ``bench/requirements-flower.txt``),
which is never a project dependency, so it runs in its own virtual environment::

    python3.11 -m venv /tmp/flwr-venv
    /tmp/flwr-venv/bin/pip install -r bench/requirements-flower.txt
    /tmp/flwr-venv/bin/python bench/flower_secaggplus.py --n 50 --d 1e6 --neighbours 8

``bench/secagg_round.py --flower-python /tmp/flwr-venv/bin/python`` runs it for each case of
its own table, in the same run. It prints one JSON line: seconds per round.

The apps are Flower's secure-aggregation example reduced to the protocol: a ``ServerApp``
running ``DefaultWorkflow(fit_workflow=SecAggPlusWorkflow(...))`` with FedAvg, and a
``ClientApp`` with ``secaggplus_mod`` whose ``fit`` returns a fixed float32 vector of d
values (no training); one simulation runs every d given, after a warm-up run.
``num_shares = neighbours + 1`` (Flower counts the client itself among
the holders of its shares), ``reconstruction_threshold`` is an honest majority of the
neighbours (as ours), Flower's default quantization (2^22 levels, modulus 2^32) and clipping.
The time of a round is that of the whole SecAgg+ workflow call (setup → unmask, client work in
the simulation's actors included), measured inside the ServerApp; the warm-up run is discarded
and the best round of each d reported, one JSON line per d.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import time
from typing import Any

import numpy as np


def flower(module: str) -> Any:
    """Import a Flower module by name (flwr is not installed where mypy runs)."""
    return importlib.import_module(module)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--d", type=float, nargs="+", required=True, help="one run per d")
    parser.add_argument("--neighbours", type=int, required=True, help="k; 0: all-to-all")
    parser.add_argument("--rounds", type=int, default=2, help="rounds per d (best is kept)")
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    app = flower("flwr.app")
    client = flower("flwr.client")
    mods = flower("flwr.client.mod")
    common = flower("flwr.common")
    server = flower("flwr.server")
    strategies = flower("flwr.server.strategy")
    workflows = flower("flwr.server.workflow")
    simulation = flower("flwr.simulation")

    n, sizes = args.n, [int(d) for d in args.d]
    k = n - 1 if args.neighbours <= 0 else min(args.neighbours, n - 1)
    num_shares = k + 1
    threshold = k // 2 + 1
    vector = np.random.default_rng(0).standard_normal(max(sizes)).astype(np.float32) * 0.1
    timings: dict[int, list[float]] = {d: [] for d in sizes}
    current = [sizes[0]]

    secaggplus = workflows.SecAggPlusWorkflow(
        num_shares=num_shares, reconstruction_threshold=threshold
    )

    def timed_fit(grid: Any, context: Any) -> None:
        started = time.perf_counter()
        secaggplus(grid, context)
        timings[current[0]].append(time.perf_counter() - started)

    numpy_client: Any = client.NumPyClient

    class Bench(numpy_client):  # type: ignore[misc]
        def fit(self, parameters: Any, config: Any) -> tuple[list[Any], int, dict[str, Any]]:
            return [vector[: parameters[0].size]], 1, {}

    def client_fn(context: Any) -> Any:
        return Bench().to_client()

    client_app = client.ClientApp(client_fn=client_fn, mods=[mods.secaggplus_mod])
    server_app = server.ServerApp()

    @server_app.main()  # type: ignore[untyped-decorator]
    def run_server(grid: Any, context: Any) -> None:
        for d in [sizes[0], *sizes]:  # a first, discarded run warms the simulation up
            current[0] = d
            strategy = strategies.FedAvg(
                fraction_fit=1.0,
                fraction_evaluate=0.0,
                min_fit_clients=n,
                min_available_clients=n,
                initial_parameters=common.ndarrays_to_parameters([np.zeros(d, np.float32)]),
            )
            legacy = server.LegacyContext(
                context=context,
                config=server.ServerConfig(num_rounds=args.rounds),
                strategy=strategy,
            )
            workflows.DefaultWorkflow(fit_workflow=timed_fit)(grid, legacy)

    del app
    logging.getLogger("flwr").setLevel(logging.WARNING)
    simulation.run_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=n,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"num_cpus": args.cpus, "include_dashboard": False},
        },
    )
    for d in sizes:
        runs = timings[d][args.rounds :] if d == sizes[0] else timings[d]  # warm-up dropped
        result = {
            "n": n,
            "d": d,
            "neighbours": k,
            "num_shares": num_shares,
            "threshold": threshold,
            "rounds": runs,
            "round_s": min(runs) if runs else None,
        }
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
