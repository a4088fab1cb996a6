"""The coordinator crashes in the middle of a secure round and is started again.

Its SecAgg+ servers live in memory, but every input they accepted is in the database: the
restarted process rebuilds each session by replaying its event log, the trainers (who waited
while it was gone) carry on, and the round finishes and verifies. Run on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from califusion.agent.secure_verify import verify_round
from califusion.cli.localserver import CoordinatorProcess
from califusion.fl.secagg import ConsistencySignature, MaskedInputRef
from califusion.protocol import JobState

from .secure_jobs import run_secure_job

pytestmark = pytest.mark.e2e


@pytest.fixture(params=["sqlite", "postgresql"])
def coordinator(
    request: pytest.FixtureRequest, tmp_path: Path, fresh_postgres_database: str
) -> Iterator[CoordinatorProcess]:
    url = (
        f"sqlite:///{tmp_path / 'coordinator.db'}"
        if request.param == "sqlite"
        else fresh_postgres_database
    )
    with CoordinatorProcess.in_folder(tmp_path, database_url=url) as server:
        yield server


def test_a_restarted_coordinator_finishes_the_round(
    coordinator: CoordinatorProcess, tmp_path: Path
) -> None:
    restarts: list[type] = []

    def crash_and_restart(message: object) -> None:
        """Trainer 0, about to send its masked input, and again about to sign the survivor
        set (the consistency stage is replayed from the log too): kill the coordinator,
        start it again."""
        kind = type(message)
        if kind in (MaskedInputRef, ConsistencySignature) and kind not in restarts:
            restarts.append(kind)
            coordinator.stop(kill=True)
            coordinator.start(timeout=60)

    with ExitStack() as stack:
        run = run_secure_job(
            coordinator.url,
            tmp_path,
            stack,
            mode="secure",
            trainers=4,
            rounds=2,
            min_trainers=4,  # nobody may drop: the round must finish exactly as planned
            deadline=240.0,  # a stage timeout of 30 s covers even a slow restart
            hooks={0: crash_and_restart},
        )
        assert restarts == [MaskedInputRef, ConsistencySignature], restarts
        assert run.final.state == JobState.COMPLETED, run.final.state_reason
        rounds = run.publisher.client.rounds(run.job.job_id)
        assert [len(r.contributors) for r in rounds] == [4, 4]
        assert [r.attempt for r in rounds] == [0, 0]
        for r in rounds:
            assert verify_round(run.publisher.client, run.job.job_id, r.number).ok
    log = (tmp_path / "coordinator.log").read_text()
    assert log.count("coordinator started") == 3
