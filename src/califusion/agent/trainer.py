"""The trainer's agent: joins a job, then trains each round on local data it never sends.

Per round it fetches the global model (ciphertext under the job key), decrypts it, trains with
the job's declarative spec (FedAvg or FedProx local updates; no publisher code runs here), and
seals the new weights with its sample count to the aggregator's agreement key. Only the
aggregator can open it: not the coordinator, not the other trainers (who all hold the job key).
In secure and blind mode it instead takes part in the round's secure aggregation
(``secure_trainer.py``), so nobody sees its update at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from califusion.agent.client import CoordinatorClient, poll
from califusion.agent.contexts import job_key_context, model_context, update_context
from califusion.agent.payments import TrainerPayments
from califusion.agent.secure_trainer import secure_train_round
from califusion.core.errors import Conflict, PermissionDenied, Unavailable
from califusion.crypto import envelope, symmetric
from califusion.crypto.encoding import b64d
from califusion.ml import from_safetensors, to_safetensors, train_local
from califusion.ml.data import Dataset, load_dataset
from califusion.protocol import JobInfo, JobState, MemberState, RoundInfo, RoundState

log = logging.getLogger(__name__)
TERMINAL = {JobState.COMPLETED, JobState.CANCELLED, JobState.FAILED}


@dataclass(frozen=True)
class TrainingReport:
    job_id: str
    number: int
    attempt: int
    samples: int
    train_loss: float
    epochs: int


@dataclass
class TrainerAgent:
    client: CoordinatorClient
    data: Dataset
    seed: int = 0
    epochs_for_round: Callable[[int], int | None] = field(default=lambda _n: None)
    on_round: Callable[[TrainingReport], None] | None = None
    # Escrow side (agent/payments.py): stakes before joining, and trains a round only once the
    # escrow can prove the earlier ones. None: a job without money.
    payments: TrainerPayments | None = None
    _job_key: dict[str, bytes] = field(default_factory=dict)
    _done: set[tuple[str, int, int]] = field(default_factory=set)

    @classmethod
    def from_file(
        cls, client: CoordinatorClient, job: JobInfo, data_path: Path, **kwargs: object
    ) -> TrainerAgent:
        """Load and check local data against the job's schema before anything is sent."""
        return cls(client, load_dataset(data_path, job.spec.data_schema), **kwargs)  # type: ignore[arg-type]

    @property
    def me(self) -> str:
        return self.client.identity.principal.to_text()

    def join(self, job_id: str) -> JobInfo:
        if self.payments is not None:  # checks the escrow's terms and funding, then stakes
            self.payments.stake(self.client.job(job_id))
        return self.client.join(job_id, self.data.num_samples)

    def membership(self, job: JobInfo) -> MemberState | None:
        for member in job.members:
            if member.trainer == self.me:
                return member.state
        return None

    def job_key(self, job_id: str) -> bytes | None:
        """The job key once the publisher has admitted us; None while pending."""
        if job_id not in self._job_key:
            try:
                wrapped = self.client.wrapped_key(job_id)
            except PermissionDenied:
                return None
            self._job_key[job_id] = envelope.unwrap_key(
                b64d(wrapped.wrapped_key), self.client.identity, job_key_context(job_id, self.me)
            )
        return self._job_key[job_id]

    def train_round(self, job: JobInfo, rnd: RoundInfo, key: bytes) -> TrainingReport:
        if job.spec.aggregation_mode != "publisher":
            return secure_train_round(self, job, rnd, key)
        spec = job.spec.model
        sealed_model = self.client.get_blob(rnd.model)
        plain = symmetric.decrypt(key, sealed_model, model_context(rnd.number - 1))
        global_weights, _ = from_safetensors(plain, spec)
        rng = np.random.default_rng([self.seed, rnd.number, rnd.attempt])
        result = train_local(
            spec,
            global_weights,
            self.data.x,
            self.data.y,
            epochs=self.epochs_for_round(rnd.number),
            rng=rng,
        )
        metadata = {
            "num_samples": str(result.num_samples),
            "train_loss": repr(float(result.train_loss)),
            "epochs": str(result.epochs_done),
        }
        payload = to_safetensors(result.weights, metadata)
        recipient = b64d(job.aggregator_agreement_public)
        ctx = update_context(job.job_id, rnd.number, rnd.attempt, self.me, job.publisher)
        digest = self.client.put_blob(envelope.seal(payload, recipient, ctx)).digest
        try:
            self.client.submit_update(job.job_id, rnd.number, rnd.attempt, digest)
        except Conflict as exc:
            log.info("update not accepted", extra={"round": rnd.number, "why": str(exc)})
        report = TrainingReport(
            job.job_id,
            rnd.number,
            rnd.attempt,
            result.num_samples,
            float(result.train_loss),
            result.epochs_done,
        )
        if self.on_round is not None:
            self.on_round(report)
        return report

    def _maybe_train(self, job: JobInfo) -> RoundInfo | None:
        """Train if the current round waits for us; return the round seen, if any."""
        if job.state != JobState.TRAINING or self.membership(job) != MemberState.ADMITTED:
            return None
        key = self.job_key(job.job_id)
        if key is None:
            return None
        rnd = self.client.current_round(job.job_id)
        marker = (job.job_id, rnd.number, rnd.attempt)
        if rnd.state == RoundState.COLLECTING and marker not in self._done:
            if self.payments is not None and not self.payments.may_train(job, rnd):
                return rnd  # the publisher has not yet signed the earlier rounds into escrow
            self.train_round(job, rnd, key)
            self._done.add(marker)
        return rnd

    def step(self, job_id: str) -> JobInfo:
        """Train if a round waits for us; otherwise do nothing."""
        job = self.client.job(job_id)
        self._maybe_train(job)
        return job

    def run(
        self,
        job_id: str,
        *,
        interval: float = 0.2,
        refresh: float = 2.0,
        timeout: float | None = None,
    ) -> JobInfo:
        """Take part in every round until the job ends.

        While training, one cheap request per ``interval`` (the current round) is enough; the
        whole job is re-read every ``refresh`` seconds and whenever a round ends the job.
        """
        job: JobInfo | None = None  # read in the loop: the coordinator may be restarting
        last_read = 0.0
        for elapsed in poll(interval, timeout):
            if job is not None and (
                job.state in TERMINAL or self.membership(job) == MemberState.REJECTED
            ):
                return job
            try:
                if job is None:
                    job = self.client.job(job_id)
                    last_read = elapsed
                    continue
                rnd = self._maybe_train(job)
                job_may_have_ended = rnd is None or (
                    rnd.state == RoundState.FAILED
                    or (rnd.state == RoundState.CLOSED and rnd.number >= job.spec.rounds)
                )
                if job_may_have_ended or elapsed - last_read >= refresh:
                    job = self.client.job(job_id)
                    last_read = elapsed
            except Unavailable as exc:  # a coordinator restarting: its state is in its database
                log.warning("coordinator unreachable; polling on", extra={"why": str(exc)})
        return job if job is not None else self.client.job(job_id)
