"""The publisher's round in secure or blind mode: fetch the sum, check it, publish the model.

The publisher's agent never sees an individual update here. Once the coordinator's SecAgg+
session is done it:

1. recomputes the round from the coordinator's signed transcript and log (``secure_verify``)
   and refuses to go on if anything does not add up — a tampered or dropped committed input, an
   altered sum;
2. takes the modular sum the coordinator holds, removes the members' pads in blind mode (it holds
   the job key; the coordinator does not), and dequantizes it: Σ_k (n_k/n_max)·Δ_k over the
   contributors (``protocol.secagg``);
3. divides by Σ_k n_k/n_max to get FedAvg's sample-weighted mean update, hands the mean weights
   to the job's server strategy (FedAvg, FedAdam, …: every strategy starts from that mean),
   evaluates on its validation data, and publishes the next model sealed under the job key.

Per-trainer training losses are not known in these modes (they would be per-trainer data), so
the round's metrics carry the validation figures and the contributors' declared samples.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import safetensors.numpy

from califusion.agent.contexts import model_context
from califusion.agent.secure_trainer import check_session
from califusion.agent.secure_verify import fetch_checked, verify_round
from califusion.core.errors import InvalidInput, WeightsError
from califusion.crypto import symmetric
from califusion.crypto.encoding import b64d
from califusion.fl import Strategy, strategy_for
from califusion.fl.secagg import remove_pad
from califusion.ml import evaluate, flatten, shapes_of, to_safetensors, unflatten_shapes
from califusion.protocol import JobInfo, JobSpec, PublishResult, RoundInfo, RoundMetrics

if TYPE_CHECKING:
    from califusion.agent.publisher import PublisherAgent, RoundReport

log = logging.getLogger(__name__)


def aggregate_securely(agent: PublisherAgent, job: JobInfo, rnd: RoundInfo) -> RoundReport:
    """Turn the round's secure sum into the next global model and publish it."""
    from califusion.agent.publisher import RoundReport  # noqa: PLC0415 - publisher imports us

    client, spec = agent.client, job.spec
    session = client.secagg_session(job.job_id, rnd.number)
    if session.stage != "done" or session.result is None or session.attempt != rnd.attempt:
        raise InvalidInput(f"round {rnd.number}'s secure aggregation is {session.stage}")
    config = check_session(session, job, rnd)
    verification = verify_round(client, job.job_id, rnd.number)
    if not verification.ok:
        problems = "; ".join(f"{f.kind}: {f.detail}" for f in verification.audit.findings)
        raise WeightsError(f"round {rnd.number} does not verify, not publishing: {problems}")

    key = agent.job_key(job.job_id)
    total = np.frombuffer(fetch_checked(client, bytes.fromhex(session.result)), config.dtype)
    contributors = sorted(session.contributors)
    if session.mode == "blind":
        total = remove_pad(total, key, b64d(session.round_id), contributors, prg=config.prg)
    summed = config.quantizer.dequantize_sum(total, len(contributors))
    declared = [p.declared_samples for p in session.participants]
    n_max = max(declared)
    weight = sum(declared[c] for c in contributors) / n_max
    mean_update = summed / weight

    global_weights = agent.model(job.job_id, rnd.model, rnd.number - 1, spec)
    mean = flatten(global_weights).astype(np.float64) + mean_update
    samples = sum(declared[c] for c in contributors)
    strategy = _strategy(agent.state_dir, job.job_id, spec, rnd.number - 1)
    new_weights = strategy.aggregate(
        global_weights, [(unflatten_shapes(mean, shapes_of(global_weights)), samples)]
    )
    state = strategy.state_dict()
    if state:
        _write_atomic(
            _job_dir(agent.state_dir, job.job_id) / f"strategy-{rnd.number}.safetensors",
            safetensors.numpy.save(state),
        )
    metrics = RoundMetrics(samples=samples)
    if agent.validation is not None:
        result = evaluate(spec.model, new_weights, agent.validation.x, agent.validation.y)
        metrics = RoundMetrics(loss=result.loss, accuracy=result.accuracy, samples=samples)
    sealed = symmetric.encrypt(key, to_safetensors(new_weights), model_context(rnd.number))
    digest = client.put_blob(sealed).digest
    names = [session.participants[c].principal for c in contributors]
    if agent.payments is not None:  # provable in escrow before the next round can start
        contributions = {name: declared[c] for name, c in zip(names, contributors, strict=True)}
        agent.payments.round_closed(job, rnd.number, contributions)
    client.publish_result(
        job.job_id,
        rnd.number,
        PublishResult(attempt=rnd.attempt, model=digest, contributors=names, metrics=metrics),
    )
    log.info(
        "securely aggregated round published",
        extra={"round": rnd.number, "contributors": len(names), "mode": session.mode},
    )
    report = RoundReport(job.job_id, rnd.number, names, {}, metrics)
    if agent.on_round is not None:
        agent.on_round(report)
    return report


def _job_dir(state_dir: Path, job_id: str) -> Path:
    path = state_dir / "jobs" / job_id
    path.mkdir(parents=True, exist_ok=True)
    return path


def _strategy(state_dir: Path, job_id: str, spec: JobSpec, after_round: int) -> Strategy:
    """The job's server strategy with its state after ``after_round`` (same files as the
    publisher-aggregated mode, safetensors, never pickle)."""
    agg = spec.aggregation
    strategy = strategy_for(
        agg.name,
        server_learning_rate=agg.server_learning_rate,
        beta1=agg.beta1,
        beta2=agg.beta2,
        tau=agg.tau,
    )
    path = _job_dir(state_dir, job_id) / f"strategy-{after_round}.safetensors"
    if after_round > 0 and path.exists():
        strategy.load_state_dict(dict(safetensors.numpy.load(path.read_bytes())))
    return strategy


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
