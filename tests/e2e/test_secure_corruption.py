"""A job that allows for trainers colluding with the coordinator, over HTTP.

With ``max_corruption = 0.2`` the eight trainers and the coordinator plan the same stricter
round (all-to-all, threshold 5 instead of 4, six survivor-set signatures instead of five) from
the public spec, each on its own; a trainer refuses a session whose parameters differ from the
ones it planned, so the job completing shows they agreed, and the transcript verifies.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest

from califusion.agent.secure_verify import verify_round
from califusion.cli.localserver import CoordinatorProcess
from califusion.fl.secagg import SecAggConfig
from califusion.protocol import JobState
from califusion.protocol.secagg import SecureAggregationSpec

from .secure_jobs import run_secure_job

pytestmark = pytest.mark.e2e


def test_a_corruption_bound_reaches_every_party(tmp_path: Path) -> None:
    secure = SecureAggregationSpec(max_dropout=0.0, max_corruption=0.2)
    with CoordinatorProcess.in_folder(tmp_path) as coordinator, ExitStack() as stack:
        run = run_secure_job(
            coordinator.url,
            tmp_path,
            stack,
            mode="secure",
            trainers=8,
            rounds=1,
            min_trainers=8,
            deadline=40.0,
            secure=secure,
        )
        assert run.final.state == JobState.COMPLETED, run.final.state_reason
        session = run.publisher.client.secagg_session(run.job.job_id, 1)
        config = SecAggConfig.from_dict(session.config)
        assert (config.max_corruption, config.degree, config.threshold) == (0.2, 7, 5)
        assert config.consistency_threshold == 6
        assert verify_round(run.publisher.client, run.job.job_id, 1).ok
