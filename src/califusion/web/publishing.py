"""The publisher side of the local agent: create jobs, move them, and serve them in the background.

A background thread steps every job this identity publishes that is open or training: it admits
pending trainers (wrapping the job key to them) and aggregates each round whose updates are in.
Only jobs whose key this machine holds (``state_dir/jobs/<id>/job-key.sealed``) can be served;
the others are marked "key not on this machine". A button press and the loop never work on the
same job at once (one lock per job), so "start" cannot race the loop's admissions.

Money, when the ledger beside the coordinator serves an escrow (:class:`EscrowLink`) and the job
moves tokens: each job's agent gets :class:`~califusion.agent.payments.PublisherPayments` (open
signs and registers the escrow terms and transfers the reward pool first, refusing with the
balance and the amount needed when the balance is short; every aggregated round is signed into
the escrow before it is published; a job that ends unfinished is closed there) and admits only
trainers whose stake the escrow shows. A completed job with a price is offered for sale, and the
loop wraps the model key to every buyer the escrow shows as paid
(:meth:`~califusion.agent.payments_sales.ModelSeller.grant_paid`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict
from pathlib import Path

from califusion.agent.admission import StakeDecider
from califusion.agent.client import CoordinatorClient
from califusion.agent.payments_sales import ModelSeller
from califusion.agent.publisher import PublisherAgent, write_json
from califusion.core.errors import CaliFusionError, InvalidInput, Unavailable
from califusion.crypto.identity import Identity
from califusion.ml import to_safetensors
from califusion.ml.data import Dataset, load_dataset
from califusion.protocol import JobInfo, JobSpec, JobState
from califusion.web.escrow import EscrowLink, close_payments, moves_money

__all__ = ["PublisherDesk"]

log = logging.getLogger(__name__)
SERVED = frozenset({JobState.OPEN, JobState.TRAINING})
ACTIONS = frozenset({"open", "start", "cancel"})
GRANT_EVERY_S = 1.0  # how often the loop looks for new buyers of a model on sale


class PublisherDesk:
    """Publisher actions for the dashboard and the loop that serves this identity's jobs."""

    def __init__(
        self,
        identity: Identity,
        coordinator_url: str,
        state_dir: Path,
        interval_s: float = 0.5,
        *,
        escrow: EscrowLink | None = None,
    ) -> None:
        self.identity = identity
        self.state_dir = state_dir
        self.interval_s = interval_s
        self.client = CoordinatorClient(coordinator_url, identity)
        self.escrow = escrow
        self._agents: dict[str, PublisherAgent] = {}
        self._errors: dict[str, str] = {}
        self._action_errors: dict[str, str] = {}
        self._sellers: dict[str, ModelSeller | None] = {}  # None: a completed job not for sale
        self._granted_at: dict[str, float] = {}
        self._lock = threading.Lock()
        self._job_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)

    @property
    def me(self) -> str:
        return self.identity.principal.to_text()

    def _job_lock(self, job_id: str) -> threading.Lock:
        with self._lock:
            return self._job_locks[job_id]

    def _agent(self, job_id: str) -> PublisherAgent:
        """The publisher agent for one job, with that job's validation data if it has any, and
        its money side if the job moves tokens and an escrow is served."""
        with self._lock:
            agent = self._agents.get(job_id)
        if agent is None:
            job = self.client.job(job_id)
            agent = self._new_agent(job.spec)
            agent.validation = self._validation(job)
            with self._lock:
                found = self._agents.setdefault(job_id, agent)
            if found is not agent:
                close_payments(agent.payments)
            agent = found
        return agent

    def _new_agent(self, spec: JobSpec) -> PublisherAgent:
        agent = PublisherAgent(self.client, self.state_dir)
        if self.escrow is not None and moves_money(spec) and self.escrow.served():
            agent.payments = self.escrow.publisher_payments()
            agent.admission = StakeDecider(agent.payments.escrow)
        return agent

    def _validation(self, job: JobInfo) -> Dataset | None:
        local = self.state_dir / "jobs" / job.job_id / "local.json"
        if not local.exists():
            return None
        path = json.loads(local.read_text()).get("validation")
        if not path:
            return None
        return load_dataset(Path(path), job.spec.data_schema)

    def has_validation(self, job_id: str) -> bool:
        """Whether this job was created here with validation data (so rounds report accuracy)."""
        local = self.state_dir / "jobs" / job_id / "local.json"
        return local.exists() and bool(json.loads(local.read_text()).get("validation"))

    def has_key(self, job_id: str) -> bool:
        return (self.state_dir / "jobs" / job_id / "job-key.sealed").exists()

    def last_error(self, job_id: str) -> str | None:
        """What went wrong the last time the loop served this job (None once it works again)."""
        with self._lock:
            return self._errors.get(job_id)

    def action_error(self, job_id: str) -> str | None:
        """Why the last open, start or cancel of this job was refused (None once one works)."""
        with self._lock:
            return self._action_errors.get(job_id)

    def _note_action(self, job_id: str, error: str | None) -> None:
        with self._lock:
            if error is None:
                self._action_errors.pop(job_id, None)
            else:
                self._action_errors[job_id] = error

    # ---- actions --------------------------------------------------------------------------

    def create(self, spec: JobSpec, validation: Path | None, *, open_now: bool) -> JobInfo:
        """Create a draft (fresh job key, encrypted initial model) and maybe open it.

        A draft that cannot be opened (the balance does not cover the reward pool, say) is
        still created; why it was not opened is kept for the message beside its open button."""
        if validation is not None:
            load_dataset(validation, spec.data_schema)  # fail now, not at round 1
        job = PublisherAgent(self.client, self.state_dir).create_job(spec)
        write_json(
            self.state_dir / "jobs" / job.job_id / "local.json",
            {"validation": str(validation.resolve()) if validation else None},
        )
        if not open_now:
            return job
        try:
            return self.act(job.job_id, "open")
        except CaliFusionError:
            return self.client.job(job.job_id)

    def act(self, job_id: str, action: str) -> JobInfo:
        """open, start or cancel; open funds the escrow first, start admits whoever waits."""
        if action not in ACTIONS:
            raise InvalidInput(f"unknown action {action!r}; use open, start or cancel")
        try:
            agent = self._agent(job_id)
            with self._job_lock(job_id):
                if action == "open":
                    job = agent.open(job_id)
                elif action == "start":
                    job = agent.start(job_id)
                else:
                    job = agent.cancel(job_id)
        except CaliFusionError as exc:
            self._note_action(job_id, f"not {_DONE[action]}: {exc}")
            raise
        self._note_action(job_id, None)
        return job

    def final_model(self, job_id: str) -> tuple[JobInfo, bytes]:
        """The completed job's final weights, decrypted here, as safetensors bytes."""
        job, weights = self._agent(job_id).results(job_id)
        metadata = {"job_id": job.job_id, "title": job.spec.title, "rounds": str(job.spec.rounds)}
        return job, to_safetensors(weights, metadata)

    # ---- background -----------------------------------------------------------------------

    def serve_forever(self, stop: threading.Event) -> None:
        """Step every open or training job of ours until ``stop`` is set."""
        while not stop.wait(self.interval_s):
            try:
                summaries = self.client.list_jobs(publisher=self.me)
            except Unavailable as exc:
                log.warning("coordinator unreachable", extra={"why": str(exc)})
                stop.wait(2.0)
                continue
            except CaliFusionError as exc:
                log.warning("cannot list our jobs", extra={"why": str(exc)})
                continue
            for summary in summaries:
                if not self.has_key(summary.job_id):
                    continue
                if summary.state in SERVED:
                    self._step(summary.job_id)
                elif summary.state == JobState.COMPLETED:
                    self._sell(summary.job_id)

    def _step(self, job_id: str) -> None:
        try:
            agent = self._agent(job_id)
            with self._job_lock(job_id):
                agent.step(job_id)
        except CaliFusionError as exc:
            self._note_error(job_id, exc)
            return
        with self._lock:
            self._errors.pop(job_id, None)

    def seller(self, job_id: str) -> ModelSeller | None:
        """The seller of a completed job's model: None without an escrow or without a price."""
        with self._lock:
            if job_id in self._sellers:
                return self._sellers[job_id]
        agent = self._agent(job_id)
        job = self.client.job(job_id)
        seller: ModelSeller | None = None
        if job.spec.price is not None and agent.payments is not None:
            seller = ModelSeller(agent, agent.payments.escrow)
            seller.offer(job_id)  # the final model, sealed under a fresh model key
        with self._lock:
            return self._sellers.setdefault(job_id, seller)

    def _sell(self, job_id: str) -> None:
        """Offer a completed priced job's model and wrap its key to each new paid buyer."""
        now = time.monotonic()
        if now - self._granted_at.get(job_id, -GRANT_EVERY_S) < GRANT_EVERY_S:
            return
        self._granted_at[job_id] = now
        try:
            seller = self.seller(job_id)
            if seller is None:
                return
            with self._job_lock(job_id):
                for buyer in seller.grant_paid(job_id):
                    log.info("granted the model key", extra={"job": job_id, "buyer": buyer})
        except CaliFusionError as exc:
            self._note_error(job_id, exc)
            return
        with self._lock:
            self._errors.pop(job_id, None)

    def _note_error(self, job_id: str, exc: CaliFusionError) -> None:
        message = f"{type(exc).__name__}: {exc}"
        with self._lock:
            changed = self._errors.get(job_id) != message
            self._errors[job_id] = message
        if changed:
            log.warning("publisher step failed", extra={"job": job_id, "why": message})

    def close(self) -> None:
        with self._lock:
            agents = list(self._agents.values())
        for agent in agents:
            close_payments(agent.payments)
        self.client.close()


_DONE = {"open": "opened", "start": "started", "cancel": "cancelled"}
