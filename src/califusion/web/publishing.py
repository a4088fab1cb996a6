"""The publisher side of the local agent: create jobs, move them, and serve them in the background.

A background thread steps every job this identity publishes that is open or training: it admits
pending trainers (wrapping the job key to them) and aggregates each round whose updates are in.
Only jobs whose key this machine holds (``state_dir/jobs/<id>/job-key.sealed``) can be served;
the others are marked "key not on this machine". A button press and the loop never work on the
same job at once (one lock per job), so "start" cannot race the loop's admissions.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from pathlib import Path

from califusion.agent.client import CoordinatorClient
from califusion.agent.publisher import PublisherAgent, write_json
from califusion.core.errors import CaliFusionError, InvalidInput, Unavailable
from califusion.crypto.identity import Identity
from califusion.ml import to_safetensors
from califusion.ml.data import Dataset, load_dataset
from califusion.protocol import JobInfo, JobSpec, JobState

__all__ = ["PublisherDesk"]

log = logging.getLogger(__name__)
SERVED = frozenset({JobState.OPEN, JobState.TRAINING})
ACTIONS = frozenset({"open", "start", "cancel"})


class PublisherDesk:
    """Publisher actions for the dashboard and the loop that serves this identity's jobs."""

    def __init__(
        self, identity: Identity, coordinator_url: str, state_dir: Path, interval_s: float = 0.5
    ) -> None:
        self.identity = identity
        self.state_dir = state_dir
        self.interval_s = interval_s
        self.client = CoordinatorClient(coordinator_url, identity)
        self._agents: dict[str, PublisherAgent] = {}
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()
        self._job_locks: defaultdict[str, threading.Lock] = defaultdict(threading.Lock)

    @property
    def me(self) -> str:
        return self.identity.principal.to_text()

    def _job_lock(self, job_id: str) -> threading.Lock:
        with self._lock:
            return self._job_locks[job_id]

    def _agent(self, job_id: str) -> PublisherAgent:
        """The publisher agent for one job, with that job's validation data if it has any."""
        with self._lock:
            agent = self._agents.get(job_id)
        if agent is None:
            agent = PublisherAgent(self.client, self.state_dir)
            agent.validation = self._validation(job_id)
            with self._lock:
                agent = self._agents.setdefault(job_id, agent)
        return agent

    def _validation(self, job_id: str) -> Dataset | None:
        local = self.state_dir / "jobs" / job_id / "local.json"
        if not local.exists():
            return None
        path = json.loads(local.read_text()).get("validation")
        if not path:
            return None
        return load_dataset(Path(path), self.client.job(job_id).spec.data_schema)

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

    # ---- actions --------------------------------------------------------------------------

    def create(self, spec: JobSpec, validation: Path | None, *, open_now: bool) -> JobInfo:
        """Create a draft (fresh job key, encrypted initial model) and maybe open it."""
        if validation is not None:
            load_dataset(validation, spec.data_schema)  # fail now, not at round 1
        agent = PublisherAgent(self.client, self.state_dir)
        job = agent.create_job(spec)
        write_json(
            self.state_dir / "jobs" / job.job_id / "local.json",
            {"validation": str(validation.resolve()) if validation else None},
        )
        return agent.open(job.job_id) if open_now else job

    def act(self, job_id: str, action: str) -> JobInfo:
        """open, start or cancel; start first admits whoever is waiting."""
        if action not in ACTIONS:
            raise InvalidInput(f"unknown action {action!r}; use open, start or cancel")
        agent = self._agent(job_id)
        with self._job_lock(job_id):
            if action == "open":
                return agent.open(job_id)
            if action == "start":
                return agent.start(job_id)
            return agent.cancel(job_id)

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
                if summary.state in SERVED and self.has_key(summary.job_id):
                    self._step(summary.job_id)

    def _step(self, job_id: str) -> None:
        try:
            agent = self._agent(job_id)
            with self._job_lock(job_id):
                agent.step(job_id)
        except CaliFusionError as exc:
            message = f"{type(exc).__name__}: {exc}"
            with self._lock:
                changed = self._errors.get(job_id) != message
                self._errors[job_id] = message
            if changed:
                log.warning("publisher step failed", extra={"job": job_id, "why": message})
            return
        with self._lock:
            self._errors.pop(job_id, None)

    def close(self) -> None:
        self.client.close()
