"""The publisher's agent: creates a job, admits trainers, aggregates rounds, fetches results.

In publisher-aggregated mode each trainer seals its update to the publisher's agreement key;
this agent opens the updates, checks every one (shape, dtype, NaN/inf, sample count), combines
them with the job's server strategy, evaluates on the publisher's validation set if it has
one, and publishes the next global model encrypted under the job key. The coordinator only
ever relays ciphertext. In secure and blind mode it sees no update at all: it turns the
coordinator's secure sum into the next model instead (``secure_publisher.py``).

Local state (``state_dir/jobs/<job_id>/``): the job key sealed to the publisher's own agreement
key, and the strategy's state after each round as safetensors (never pickle).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import safetensors.numpy

from califusion.agent.admission import AdmissionDecider, AdmitAll
from califusion.agent.client import CoordinatorClient, poll
from califusion.agent.contexts import (
    job_key_context,
    model_context,
    own_key_context,
    update_context,
)
from califusion.agent.payments import PublisherPayments
from califusion.agent.secure_publisher import aggregate_securely
from califusion.core.errors import (
    CaliFusionError,
    InvalidInput,
    NotFound,
    Unavailable,
    WeightsError,
)
from califusion.crypto import envelope, symmetric
from califusion.crypto.encoding import b64d, b64e
from califusion.fl import Strategy, strategy_for
from califusion.ml import Weights, evaluate, from_safetensors, init_weights, to_safetensors
from califusion.ml.data import Dataset
from califusion.protocol import (
    Admission,
    AdmitTrainers,
    JobInfo,
    JobSpec,
    JobState,
    MemberState,
    PublishResult,
    RoundInfo,
    RoundMetrics,
    RoundState,
)

log = logging.getLogger(__name__)
TERMINAL = {JobState.COMPLETED, JobState.CANCELLED, JobState.FAILED}


@dataclass(frozen=True)
class RoundReport:
    """What the publisher learned from aggregating one round."""

    job_id: str
    number: int
    contributors: list[str]
    rejected: dict[str, str]
    metrics: RoundMetrics


@dataclass
class PublisherAgent:
    client: CoordinatorClient
    state_dir: Path
    admission: AdmissionDecider = field(default_factory=AdmitAll)
    validation: Dataset | None = None
    on_round: Callable[[RoundReport], None] | None = None
    # Escrow side (agent/payments.py): funds on open, signs each round's contributors before
    # publishing it, closes the escrow if the job ends without completing. None: no money.
    payments: PublisherPayments | None = None

    @property
    def me(self) -> str:
        return self.client.identity.principal.to_text()

    # ---- local state ----------------------------------------------------------------------

    def _job_dir(self, job_id: str) -> Path:
        path = self.state_dir / "jobs" / job_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _store_job_key(self, job_id: str, key: bytes) -> None:
        agreement = self.client.identity.public().agreement_public
        sealed = envelope.seal(key, agreement, own_key_context(job_id))
        _write_atomic(self._job_dir(job_id) / "job-key.sealed", sealed)

    def job_key(self, job_id: str) -> bytes:
        path = self.state_dir / "jobs" / job_id / "job-key.sealed"
        if not path.exists():
            raise NotFound(f"no job key for {job_id} in {self.state_dir}: not published from here")
        return envelope.open_envelope(
            path.read_bytes(), self.client.identity, own_key_context(job_id)
        )

    # ---- lifecycle ------------------------------------------------------------------------

    def create_job(self, spec: JobSpec) -> JobInfo:
        """Encrypt the initial model under a fresh job key and register the draft job."""
        key = symmetric.new_job_key()
        initial = to_safetensors(init_weights(spec.model))
        blob = self.client.put_blob(symmetric.encrypt(key, initial, model_context(0)))
        job = self.client.create_job(spec, blob.digest)
        self._store_job_key(job.job_id, key)
        return job

    def open(self, job_id: str) -> JobInfo:
        if self.payments is not None:  # the reward pool goes into escrow before the job opens
            self.payments.fund(self.client.job(job_id))
        return self.client.transition(job_id, "open")

    def start(self, job_id: str) -> JobInfo:
        self.admit_pending(job_id)
        return self.client.transition(job_id, "start")

    def cancel(self, job_id: str) -> JobInfo:
        job = self.client.transition(job_id, "cancel")
        if self.payments is not None:
            self.payments.settle_up(job, lambda: self.client.rounds(job_id))
        return job

    def admit_pending(self, job_id: str) -> JobInfo:
        """Wrap the job key to every pending trainer the admission decider accepts."""
        job = self.client.job(job_id)
        pending = [m for m in job.members if m.state == MemberState.PENDING]
        if not pending or job.state not in {JobState.OPEN, JobState.TRAINING}:
            return job
        key = self.job_key(job_id)
        admissions: list[Admission] = []
        rejections: list[str] = []
        for member in pending:
            verdict = self.admission.decide(job, member)
            if verdict is None:
                continue  # not decided yet (for example a stake not yet seen)
            if not verdict:
                rejections.append(member.trainer)
                continue
            info = self.client.principal(member.trainer)
            wrapped = envelope.wrap_key(
                key, b64d(info.agreement_public), job_key_context(job_id, member.trainer)
            )
            admissions.append(Admission(trainer=member.trainer, wrapped_key=b64e(wrapped)))
        if not admissions and not rejections:
            return job
        return self.client.admit(
            job_id, AdmitTrainers(admissions=admissions, rejections=rejections)
        )

    # ---- rounds ---------------------------------------------------------------------------

    def model(self, job_id: str, digest: str, version: int, spec: JobSpec) -> Weights:
        plain = symmetric.decrypt(
            self.job_key(job_id), self.client.get_blob(digest), model_context(version)
        )
        weights, _ = from_safetensors(plain, spec.model)
        return weights

    def _strategy(self, job_id: str, spec: JobSpec, after_round: int) -> Strategy:
        agg = spec.aggregation
        strategy = strategy_for(
            agg.name,
            server_learning_rate=agg.server_learning_rate,
            beta1=agg.beta1,
            beta2=agg.beta2,
            tau=agg.tau,
        )
        path = self._job_dir(job_id) / f"strategy-{after_round}.safetensors"
        if after_round > 0 and path.exists():
            strategy.load_state_dict(dict(safetensors.numpy.load(path.read_bytes())))
        return strategy

    def aggregate(self, job: JobInfo, rnd: RoundInfo) -> RoundReport:
        """Open, check and combine one round's updates; publish the next model."""
        if job.spec.aggregation_mode != "publisher":
            return aggregate_securely(self, job, rnd)
        spec = job.spec
        global_weights = self.model(job.job_id, rnd.model, rnd.number - 1, spec)
        accepted: list[tuple[str, Weights, int, float]] = []
        rejected: dict[str, str] = {}
        declared = {m.trainer: m.declared_samples for m in job.members}
        for update in self.client.updates(job.job_id, rnd.number):
            ctx = update_context(job.job_id, rnd.number, rnd.attempt, update.trainer, self.me)
            try:
                plain = envelope.open_envelope(
                    self.client.get_blob(update.update), self.client.identity, ctx
                )
                weights, meta = from_safetensors(plain, spec.model)
                samples = _int_field(meta, "num_samples")
                if samples > declared.get(update.trainer, 0):
                    raise InvalidInput(
                        f"reports {samples} samples, declared {declared.get(update.trainer)}"
                    )
                train_loss = float(meta.get("train_loss", "nan"))
            except CaliFusionError as exc:
                rejected[update.trainer] = f"{type(exc).__name__}: {exc}"
                log.warning("rejected update", extra={"trainer": update.trainer, "why": str(exc)})
                continue
            accepted.append((update.trainer, weights, samples, train_loss))
        if not accepted:
            raise WeightsError(f"round {rnd.number}: no valid update to aggregate ({rejected})")

        strategy = self._strategy(job.job_id, spec, rnd.number - 1)
        new_weights = strategy.aggregate(global_weights, [(w, n) for _, w, n, _ in accepted])
        state = strategy.state_dict()
        if state:
            _write_atomic(
                self._job_dir(job.job_id) / f"strategy-{rnd.number}.safetensors",
                safetensors.numpy.save(state),
            )
        metrics = self._metrics(spec, new_weights, accepted)
        plain_model = to_safetensors(new_weights)
        sealed = symmetric.encrypt(self.job_key(job.job_id), plain_model, model_context(rnd.number))
        digest = self.client.put_blob(sealed).digest
        contributors = [t for t, _, _, _ in accepted]
        if self.payments is not None:  # provable in escrow before the next round can start
            self.payments.round_closed(job, rnd.number, {t: n for t, _, n, _ in accepted})
        self.client.publish_result(
            job.job_id,
            rnd.number,
            PublishResult(
                attempt=rnd.attempt, model=digest, contributors=contributors, metrics=metrics
            ),
        )
        report = RoundReport(job.job_id, rnd.number, contributors, rejected, metrics)
        if self.on_round is not None:
            self.on_round(report)
        return report

    def _metrics(
        self, spec: JobSpec, weights: Weights, accepted: list[tuple[str, Weights, int, float]]
    ) -> RoundMetrics:
        samples = sum(n for _, _, n, _ in accepted)
        losses = np.array([loss for _, _, _, loss in accepted], dtype=np.float64)
        counts = np.array([n for _, _, n, _ in accepted], dtype=np.float64)
        finite = np.isfinite(losses)
        train_loss = (
            float(np.average(losses[finite], weights=counts[finite])) if finite.any() else None
        )
        if self.validation is None:
            return RoundMetrics(train_loss=train_loss, samples=samples)
        result = evaluate(spec.model, weights, self.validation.x, self.validation.y)
        return RoundMetrics(
            loss=result.loss, accuracy=result.accuracy, train_loss=train_loss, samples=samples
        )

    def step(self, job_id: str) -> JobInfo:
        """Do whatever the job needs from its publisher right now."""
        job = self.client.job(job_id)
        if self.payments is not None:  # rounds the escrow lacks; a job that ended unfinished
            self.payments.settle_up(job, lambda: self.client.rounds(job_id))
        if job.state in {JobState.OPEN, JobState.TRAINING}:
            job = self.admit_pending(job_id)
        if job.state == JobState.TRAINING and self._aggregate_if_due(job) is not None:
            job = self.client.job(job_id)
        return job

    def _aggregate_if_due(self, job: JobInfo) -> RoundInfo | None:
        rnd = self.client.current_round(job.job_id)
        if rnd.state == RoundState.AGGREGATING:
            self.aggregate(job, rnd)
            return rnd
        return None

    def run(
        self,
        job_id: str,
        *,
        interval: float = 0.2,
        refresh: float = 2.0,
        timeout: float | None = None,
    ) -> JobInfo:
        """Serve the job until it ends (completed, cancelled or failed).

        While training, one request per ``interval`` (the current round) is enough; the whole
        job is re-read (and pending trainers admitted) every ``refresh`` seconds and after
        every aggregation.
        """
        job: JobInfo | None = None  # read in the loop: the coordinator may be restarting
        last_read = 0.0
        for elapsed in poll(interval, timeout):
            if job is not None and job.state in TERMINAL:
                if self.payments is not None:
                    self.payments.settle_up(job, lambda: self.client.rounds(job_id))
                return job
            try:
                if job is None:
                    job = self.step(job_id)
                    last_read = elapsed
                    continue
                aggregated = job.state == JobState.TRAINING and self._aggregate_if_due(job)
                if aggregated or job.state != JobState.TRAINING or elapsed - last_read >= refresh:
                    job = self.step(job_id)
                    last_read = elapsed
            except Unavailable as exc:  # a coordinator restarting: its state is in its database
                log.warning("coordinator unreachable; polling on", extra={"why": str(exc)})
        return job if job is not None else self.client.job(job_id)

    def results(self, job_id: str) -> tuple[JobInfo, Weights]:
        """The final model of a completed job, decrypted."""
        job = self.client.job(job_id)
        if job.state != JobState.COMPLETED or job.final_model is None:
            raise InvalidInput(f"job {job_id} is {job.state.value}, not completed: no final model")
        return job, self.model(job_id, job.final_model, job.spec.rounds, job.spec)


def _int_field(meta: dict[str, str], name: str) -> int:
    try:
        value = int(meta[name])
    except (KeyError, ValueError) as exc:
        raise InvalidInput(f"update metadata lacks an integer {name!r}") from exc
    if value < 1:
        raise InvalidInput(f"update metadata {name} must be positive, got {value}")
    return value


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_json(path: Path, payload: dict[str, object]) -> None:
    _write_atomic(path, json.dumps(payload, indent=2).encode())
