"""The trainer side of the local agent: check local data, join, and train in the background.

The data file never leaves this machine: the browser names a path (or uploads the file to this
local process only, which keeps it in ``state_dir/uploads`` readable by the user alone), the
agent validates it against the job's schema and, once joined, a background thread takes part in
every round until the job ends. What the agent joined and each round it trained is kept in
``state_dir/trainer/jobs.json``, so a restarted dashboard resumes its jobs.

Money, when an escrow is served and the job moves tokens: confirming a join first checks that
the escrow is bound to the terms the job shows and funded, then stakes (ICRC-2 approve of the
job's escrow account, and the escrow collects), then asks the coordinator to join
(:class:`~califusion.agent.payments.TrainerPayments`). The thread then trains round ``n`` only
once the escrow holds the publisher's statement of round ``n - 1`` (``may_train``).
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import threading
import time
from pathlib import Path
from typing import BinaryIO

from pydantic import BaseModel, TypeAdapter

from califusion.agent.client import CoordinatorClient
from califusion.agent.trainer import TrainerAgent, TrainingReport
from califusion.core.errors import (
    CaliFusionError,
    Conflict,
    DataSchemaError,
    PayloadTooLarge,
    Unavailable,
)
from califusion.crypto.identity import Identity
from califusion.ml.data import Dataset, load_dataset
from califusion.protocol import JobInfo, JobSpec, JobState, MemberState
from califusion.web.escrow import EscrowLink, close_payments, moves_money

__all__ = ["RoundRecord", "TrainerDesk", "TrainingRecord"]

log = logging.getLogger(__name__)
TERMINAL = frozenset({JobState.COMPLETED, JobState.CANCELLED, JobState.FAILED})
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class RoundRecord(BaseModel):
    """One round this agent trained."""

    number: int
    attempt: int
    samples: int
    train_loss: float
    epochs: int
    at: float


class TrainingRecord(BaseModel):
    """A job this agent joined from the dashboard, and how it went."""

    job_id: str
    title: str
    data_path: str
    samples: int
    seed: int
    joined_at: float
    job_state: str = JobState.OPEN.value
    member_state: str = MemberState.PENDING.value
    error: str | None = None
    rounds: list[RoundRecord] = []

    @property
    def active(self) -> bool:
        return self.job_state not in TERMINAL and self.member_state != MemberState.REJECTED


_RECORDS = TypeAdapter(list[TrainingRecord])


class TrainerDesk:
    """Joins jobs with local data and runs one trainer thread per joined job."""

    def __init__(
        self,
        identity: Identity,
        coordinator_url: str,
        state_dir: Path,
        stop: threading.Event,
        interval_s: float = 0.5,
        *,
        escrow: EscrowLink | None = None,
    ) -> None:
        self.identity = identity
        self.escrow = escrow
        self._stop = stop
        self.coordinator_url = coordinator_url
        self.state_dir = state_dir
        self.interval_s = interval_s
        self._path = state_dir / "trainer" / "jobs.json"
        self._lock = threading.Lock()
        self._records: dict[str, TrainingRecord] = {}
        self._threads: dict[str, threading.Thread] = {}
        if self._path.exists():
            for record in _RECORDS.validate_json(self._path.read_bytes()):
                self._records[record.job_id] = record

    # ---- records --------------------------------------------------------------------------

    def records(self) -> list[TrainingRecord]:
        with self._lock:
            return sorted(
                (r.model_copy(deep=True) for r in self._records.values()),
                key=lambda r: r.joined_at,
                reverse=True,
            )

    def record(self, job_id: str) -> TrainingRecord | None:
        with self._lock:
            found = self._records.get(job_id)
            return found.model_copy(deep=True) if found else None

    def _save(self) -> None:
        """Write the records atomically (callers hold the lock)."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_suffix(".tmp")
        tmp.write_bytes(_RECORDS.dump_json(list(self._records.values()), indent=2))
        os.replace(tmp, self._path)

    def _update(self, job_id: str, **changes: object) -> None:
        with self._lock:
            record = self._records[job_id]
            self._records[job_id] = record.model_copy(update=changes)
            self._save()

    # ---- data -----------------------------------------------------------------------------

    def store_upload(self, filename: str, source: BinaryIO, max_bytes: int) -> Path:
        """Keep an uploaded data file in this agent's folder, readable by this user only."""
        name = _SAFE_NAME.sub("_", Path(filename).name).strip("._") or "data"
        folder = self.state_dir / "uploads"
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        target = folder / f"{secrets.token_hex(8)}-{name}"
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            shutil.copyfileobj(source, out, 1024 * 1024)
            size = out.tell()
        if size > max_bytes:
            target.unlink()
            raise PayloadTooLarge(f"{name}: {size} bytes, over the upload limit of {max_bytes}")
        return target

    @staticmethod
    def check(job: JobInfo, path: Path) -> Dataset:
        """Load ``path`` and check it against the job's schema (DataSchemaError if it fails)."""
        if not path.is_absolute():
            raise DataSchemaError(
                f"{path}: give the full path of the data file", row=None, column=None
            )
        return load_dataset(path, job.spec.data_schema)

    # ---- joining and training -------------------------------------------------------------

    def join(self, job: JobInfo, path: Path) -> TrainingRecord:
        """Validate the data, ask the coordinator to join, and start training in the background."""
        data = self.check(job, path)
        record = TrainingRecord(
            job_id=job.job_id,
            title=job.spec.title,
            data_path=str(path),
            samples=data.num_samples,
            seed=secrets.randbits(31),
            joined_at=time.time(),
        )
        agent = self._trainer(record, data, job.spec)
        try:
            try:
                joined = agent.join(job.job_id)  # stakes first when the job moves money
            except Conflict:
                joined = agent.client.job(job.job_id)
                if agent.membership(joined) is None:
                    raise
        except BaseException:
            _close(agent)
            raise
        record = record.model_copy(
            update={
                "job_state": joined.state.value,
                "member_state": (agent.membership(joined) or MemberState.PENDING).value,
            }
        )
        with self._lock:
            self._records[job.job_id] = record
            self._save()
        self._launch(record.job_id, agent)
        return record

    def staking(self, spec: JobSpec) -> bool:
        """Whether joining this job stakes through the escrow (Unavailable if the ledger is
        down: then nobody can tell, and a job with money must not be joined unstaked)."""
        return self.escrow is not None and moves_money(spec) and self.escrow.served()

    def _trainer(self, record: TrainingRecord, data: Dataset, spec: JobSpec) -> TrainerAgent:
        payments = None
        if self.escrow is not None and self.staking(spec):
            payments = self.escrow.trainer_payments()
        client = CoordinatorClient(self.coordinator_url, self.identity)
        job_id = record.job_id

        def on_round(report: TrainingReport) -> None:
            entry = RoundRecord(
                number=report.number,
                attempt=report.attempt,
                samples=report.samples,
                train_loss=report.train_loss,
                epochs=report.epochs,
                at=time.time(),
            )
            with self._lock:
                current = self._records[job_id]
                rounds = [*current.rounds, entry]
                self._records[job_id] = current.model_copy(update={"rounds": rounds})
                self._save()

        return TrainerAgent(client, data, seed=record.seed, on_round=on_round, payments=payments)

    def _launch(self, job_id: str, agent: TrainerAgent) -> None:
        thread = threading.Thread(
            target=self._run, args=(job_id, agent), name=f"trainer-{job_id}", daemon=True
        )
        with self._lock:
            self._threads[job_id] = thread
        thread.start()

    def resume(self) -> None:
        """Start threads for every joined job that has not ended (after a restart)."""
        for record in self.records():
            if record.active:
                thread = threading.Thread(
                    target=self._resume_one,
                    args=(record,),
                    name=f"resume-{record.job_id}",
                    daemon=True,
                )
                with self._lock:
                    self._threads[record.job_id] = thread
                thread.start()

    def _resume_one(self, record: TrainingRecord) -> None:
        """Reload the data (waiting for the coordinator if need be), then train as before."""
        while True:
            try:
                with CoordinatorClient(self.coordinator_url, self.identity) as client:
                    spec = client.job(record.job_id).spec
                data = load_dataset(Path(record.data_path), spec.data_schema)
                agent = self._trainer(record, data, spec)
                break
            except Unavailable as exc:
                self._update(record.job_id, error=f"waiting for the coordinator: {exc}")
                if self._stop.wait(5.0):
                    return
            except CaliFusionError as exc:
                self._update(record.job_id, error=f"cannot resume: {exc}")
                return
        self._run(record.job_id, agent)

    def _run(self, job_id: str, agent: TrainerAgent) -> None:
        backoff = self.interval_s
        try:
            while not self._stop.wait(backoff):
                try:
                    job = agent.step(job_id)
                except CaliFusionError as exc:
                    self._update(job_id, error=f"{type(exc).__name__}: {exc}")
                    backoff = min(backoff * 2, 10.0)
                    continue
                backoff = self.interval_s
                member = agent.membership(job)
                self._update(
                    job_id,
                    job_state=job.state.value,
                    member_state=member.value if member else MemberState.PENDING.value,
                    error=None,
                )
                if job.state in TERMINAL or member == MemberState.REJECTED:
                    return
        finally:
            _close(agent)

    def join_threads(self, timeout: float) -> None:
        with self._lock:
            threads = list(self._threads.values())
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def _close(agent: TrainerAgent) -> None:
    agent.client.close()
    close_payments(agent.payments)
