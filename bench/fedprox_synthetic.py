"""FedProx's Synthetic(1,1) experiment (Li et al., MLSys 2020, Fig. 1), run on CaliFusion's stack.

    .venv/bin/python bench/fedprox_synthetic.py [--seeds 5] [--rounds 200] [--workers 2]

Reproduces the authors' code (github.com/litian96/FedProx: ``flearn/trainers/fedavg.py``,
``fedprox.py``, ``fedbase.py``, ``flearn/models/synthetic/mclr.py``,
``flearn/utils/model_utils.py``, ``run_fedavg.sh`` / ``run_fedprox.sh``):

* data: ``califusion.ml.partition.synthetic(1, 1, seed=s)`` — 30 devices, 60 features, 10
  classes — split per device as their generator does (shuffle, first 90% train, rest test);
* model: multinomial logistic regression, a Keras ``Dense`` default init (Glorot-uniform
  kernel, zero bias; ``init_weights`` with ``init_seed=s``). Their ``kernel_regularizer`` is
  never added to the loss they minimise, so there is no L2 term here either;
* clients: SGD, lr 0.01, batch 10 (last batch partial), E = 20 epochs; FedProx adds
  μ/2·‖w − w_global‖². Each epoch reorders a client's data as their ``batch_data`` does: an
  in-place shuffle after ``np.random.seed(100)``, so the order is permuted further each epoch
  and the shuffled order persists across rounds;
* rounds: ``np.random.seed(r)``; 10 of 30 devices uniformly without replacement; then
  ``np.random.seed(r)`` again and ``round(10·(1 − drop))`` of those are active. FedAvg trains
  and averages only the active devices; FedProx also averages the stragglers' partial work of
  ``np.random.randint(1, 20)`` epochs, drawn from the global NumPy stream right where their loop
  draws it (after the previous client's ``batch_data`` reseeded it with 100) — emulated here
  with one legacy ``RandomState`` per run;
* server: sample-weighted average (``califusion.fl.strategy_for("fedavg"/"fedprox")``);
* metric: pooled test accuracy, Σ correct / Σ test samples over all 30 devices, after every
  round (their ``eval_every=1``).

Seeds vary the data set and the initial weights; client selection depends on the round only,
as in their code. The centralized baseline trains the same model on the pooled training data
(SGD lr 0.01, batch 10, reshuffled every epoch) for 200·20·10/30 ≈ 1333 epochs — the expected
number of per-sample gradient steps of FedAvg without stragglers — evaluated at 200 evenly
spaced checkpoints.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from califusion.fl import strategy_for
from califusion.ml import ModelSpec, evaluate, init_weights, train_local
from califusion.ml.partition import synthetic, train_test_split_per_device

DEVICES = 30
CLIENTS_PER_ROUND = 10
EPOCHS = 20
BATCH = 10
LEARNING_RATE = 0.01
RESULTS = Path(__file__).parent / "results"

Array = NDArray[Any]


@dataclass(frozen=True)
class Config:
    label: str
    algorithm: str  # fedavg | fedprox | central
    mu: float
    drop: float


CONFIGS = [
    Config("Centralized SGD", "central", 0.0, 0.0),
    Config("FedAvg", "fedavg", 0.0, 0.0),
    Config("FedProx μ=1", "fedprox", 1.0, 0.0),
    Config("FedProx μ=0", "fedprox", 0.0, 0.9),
    Config("FedProx μ=1", "fedprox", 1.0, 0.9),
    Config("FedAvg", "fedavg", 0.0, 0.9),
]


def model_spec(mu: float, seed: int) -> ModelSpec:
    return ModelSpec.model_validate(
        {
            "architecture": {"kind": "logistic_regression", "n_features": 60, "n_classes": 10},
            "training": {
                "loss": "cross_entropy",
                "optimizer": {"name": "sgd", "learning_rate": LEARNING_RATE},
                "local_epochs": EPOCHS,
                "batch_size": BATCH,
                "proximal_mu": mu,
            },
            "init_seed": seed,
        }
    )


def load(seed: int) -> tuple[list[tuple[Array, Array]], Array, Array, Array, Array]:
    devices = synthetic(1.0, 1.0, num_devices=DEVICES, seed=seed)
    train, test = train_test_split_per_device(devices, test_fraction=0.1, seed=seed)
    pooled_train_x = np.concatenate([x for x, _ in train])
    pooled_train_y = np.concatenate([y for _, y in train])
    pooled_test_x = np.concatenate([x for x, _ in test])
    pooled_test_y = np.concatenate([y for _, y in test])
    return train, pooled_train_x, pooled_train_y, pooled_test_x, pooled_test_y


class AuthorsBatching:
    """Their ``batch_data``: ``np.random.seed(100)`` then an in-place shuffle, every epoch."""

    def __init__(self, stream: np.random.RandomState, rows: int) -> None:
        self.stream = stream
        self.current = np.arange(rows)  # where each stored row came from, after past shuffles

    def __call__(self, epoch: int) -> Array:
        self.stream.seed(100)
        permutation = np.arange(self.current.size)
        self.stream.shuffle(permutation)  # same swaps, same stream use as shuffling the rows
        self.current = self.current[permutation]
        return self.current


def run_federated(config: Config, seed: int, rounds: int) -> dict[str, Any]:
    train, train_x, train_y, test_x, test_y = load(seed)
    spec = model_spec(config.mu, seed)
    weights = init_weights(spec)
    strategy = strategy_for(config.algorithm)
    stream = np.random.RandomState(0)  # stands in for their global np.random state
    batching = [AuthorsBatching(stream, len(y)) for _, y in train]
    unused = np.random.default_rng(0)  # train_local's rng; their batching replaces it
    accuracy = [evaluate(spec, weights, test_x, test_y).accuracy]
    steps = 0
    start = time.perf_counter()
    for r in range(rounds):
        stream.seed(r)
        selected = stream.choice(np.arange(DEVICES), CLIENTS_PER_ROUND, replace=False)
        stream.seed(r)
        active = set(stream.choice(selected, round(CLIENTS_PER_ROUND * (1 - config.drop)), False))
        updates = []
        for device in selected:
            if device in active:
                epochs = EPOCHS
            elif config.algorithm == "fedprox":
                epochs = int(stream.randint(1, EPOCHS))
            else:
                continue  # FedAvg drops the stragglers
            x, y = train[device]
            result = train_local(
                spec, weights, x, y, epochs=epochs, rng=unused, epoch_order=batching[device]
            )
            updates.append((result.weights, result.num_samples))
            steps += epochs * math.ceil(len(y) / BATCH)
        weights = strategy.aggregate(weights, updates)
        accuracy.append(evaluate(spec, weights, test_x, test_y).accuracy)
    wall = time.perf_counter() - start
    train_loss = evaluate(spec, weights, train_x, train_y).loss
    return {"accuracy": accuracy, "train_loss": train_loss, "wall_s": wall, "steps": steps}


def run_centralized(seed: int, rounds: int) -> dict[str, Any]:
    _, train_x, train_y, test_x, test_y = load(seed)
    spec = model_spec(0.0, seed)
    weights = init_weights(spec)
    rng = np.random.default_rng(seed)
    total_epochs = round(rounds * EPOCHS * CLIENTS_PER_ROUND / DEVICES)
    checkpoints = [round(total_epochs * (r + 1) / rounds) for r in range(rounds)]
    accuracy = [evaluate(spec, weights, test_x, test_y).accuracy]
    done = steps = 0
    start = time.perf_counter()
    for checkpoint in checkpoints:
        if checkpoint > done:
            result = train_local(spec, weights, train_x, train_y, epochs=checkpoint - done, rng=rng)
            weights = result.weights
            steps += (checkpoint - done) * math.ceil(len(train_y) / BATCH)
            done = checkpoint
        accuracy.append(evaluate(spec, weights, test_x, test_y).accuracy)
    wall = time.perf_counter() - start
    train_loss = evaluate(spec, weights, train_x, train_y).loss
    return {
        "accuracy": accuracy,
        "train_loss": train_loss,
        "wall_s": wall,
        "steps": steps,
        "epochs": total_epochs,
    }


def run_task(task: tuple[int, int, int]) -> tuple[int, int, dict[str, Any]]:
    index, seed, rounds = task
    config = CONFIGS[index]
    if config.algorithm == "central":
        return index, seed, run_centralized(seed, rounds)
    return index, seed, run_federated(config, seed, rounds)


def measure_steps_per_second() -> dict[str, float]:
    """``train_local`` throughput: logistic regression 60×10, batch 10, 1000 rows, 20 epochs."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1000, 60)).astype(np.float32)
    y = rng.integers(0, 10, 1000)
    rates = {}
    for mu in (0.0, 1.0):
        spec = model_spec(mu, 0)
        weights = init_weights(spec)
        best = math.inf
        for _ in range(5):
            start = time.perf_counter()
            train_local(spec, weights, x, y, rng=rng)
            best = min(best, time.perf_counter() - start)
        rates[f"mu={mu:g}"] = EPOCHS * 100 / best
    return rates


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {sd:.4f}"


def summarize(
    results: dict[tuple[int, int], dict[str, Any]], seeds: int, rounds: int
) -> list[list[str]]:
    rows = []
    for index, config in enumerate(CONFIGS):
        runs = [results[index, s] for s in range(seeds) if (index, s) in results]
        if not runs:
            continue
        final = [run["accuracy"][rounds] for run in runs]
        best = [max(run["accuracy"][1:]) for run in runs]
        last10 = [statistics.mean(run["accuracy"][-10:]) for run in runs]
        loss = [run["train_loss"] for run in runs]
        wall = statistics.mean(run["wall_s"] for run in runs)
        rate = statistics.mean(run["steps"] / run["wall_s"] for run in runs)
        drop = "—" if config.algorithm == "central" else f"{config.drop:.0%}"
        mu = "—" if config.algorithm == "central" else f"{config.mu:g}"
        rows.append(
            [
                config.label,
                mu,
                drop,
                mean_sd(final),
                mean_sd(best),
                mean_sd(last10),
                mean_sd(loss),
                f"{wall:.1f}",
                f"{rate:,.0f}",
            ]
        )
    return rows


def markdown(rows: list[list[str]]) -> str:
    header = ["method", "μ", "stragglers", "final test acc", "best test acc",
              "last-10-round mean", "final train loss", "wall s/run", "steps/s"]  # fmt: skip
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=RESULTS / "fedprox_synthetic.md")
    args = parser.parse_args()

    rates = measure_steps_per_second()
    print("train_local steps/s (LR 60×10, B=10): "
          + ", ".join(f"{k}: {v:,.0f}" for k, v in rates.items()), flush=True)  # fmt: skip
    # the longest runs first, so the workers finish together
    tasks = [(i, s, args.rounds) for i in range(len(CONFIGS)) for s in range(args.seeds)]
    results: dict[tuple[int, int], dict[str, Any]] = {}
    start = time.perf_counter()
    with multiprocessing.Pool(args.workers) as pool:
        for index, seed, result in pool.imap_unordered(run_task, tasks):
            results[index, seed] = result
            config = CONFIGS[index]
            print(f"[{time.perf_counter() - start:7.1f}s] {config.label} drop={config.drop:.0%}"
                  f" seed={seed}: final acc {result['accuracy'][-1]:.4f}"
                  f" ({result['wall_s']:.1f}s)", flush=True)  # fmt: skip
    total = time.perf_counter() - start

    table = markdown(summarize(results, args.seeds, args.rounds))
    command = "  .venv/bin/python bench/fedprox_synthetic.py " + " ".join(sys.argv[1:])
    central_epochs = round(args.rounds * EPOCHS * CLIENTS_PER_ROUND / DEVICES)
    report = "\n".join(
        [
            "# FedProx Synthetic(1,1) on CaliFusion",
            "",
            command.rstrip(),
            "",
            f"{args.seeds} seeds (data + init), {args.rounds} rounds, {DEVICES} devices, "
            f"{CLIENTS_PER_ROUND} per round, E={EPOCHS}, B={BATCH}, lr={LEARNING_RATE}; "
            f"centralized: {central_epochs} epochs on the pooled training data. "
            "Accuracy is pooled test accuracy (Σ correct / Σ test samples); mean ± sd over "
            "seeds. 'best' is the best round, 'last-10' the mean of the last 10 rounds.",
            "",
            table,
            "",
            f"Total wall time {total / 60:.1f} min with {args.workers} worker processes on "
            f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}, "
            f"Python {platform.python_version()}, NumPy {np.__version__}). steps/s counts "
            "local SGD steps over the whole run, evaluation included. train_local alone: "
            + ", ".join(f"{k} {v:,.0f} steps/s" for k, v in rates.items())
            + " (best of 5).",
            "",
        ]
    )
    print()
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report, encoding="utf-8")
    curves = {
        f"{CONFIGS[i].label} drop={CONFIGS[i].drop:g} seed={s}": r["accuracy"]
        for (i, s), r in sorted(results.items())
    }
    args.out.with_suffix(".json").write_text(json.dumps(curves), encoding="utf-8")


if __name__ == "__main__":
    main()
