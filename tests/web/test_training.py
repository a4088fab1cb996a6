"""The trainer desk's local side: uploads kept privately, paths checked, records that persist."""

from __future__ import annotations

import io
import stat
import threading
from pathlib import Path

import pytest

from califusion.core.errors import DataSchemaError, PayloadTooLarge
from califusion.crypto.identity import Identity
from califusion.web.training import RoundRecord, TrainerDesk, TrainingRecord


def _desk(state: Path) -> TrainerDesk:
    return TrainerDesk(Identity.generate(), "http://127.0.0.1:9", state, threading.Event())


def test_an_upload_is_kept_readable_by_its_owner_only(tmp_path: Path) -> None:
    desk = _desk(tmp_path)
    path = desk.store_upload("../../etc/my data.csv", io.BytesIO(b"x0,label\n1,0\n"), 1024)
    assert path.parent == tmp_path / "uploads"
    assert path.name.endswith("-my_data.csv")
    assert path.read_bytes() == b"x0,label\n1,0\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_an_upload_over_the_limit_is_refused_and_removed(tmp_path: Path) -> None:
    desk = _desk(tmp_path)
    with pytest.raises(PayloadTooLarge):
        desk.store_upload("big.csv", io.BytesIO(b"x" * 2048), 1024)
    assert list((tmp_path / "uploads").iterdir()) == []


def test_a_relative_data_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DataSchemaError, match="full path"):
        TrainerDesk.check(None, Path("data.csv"))  # type: ignore[arg-type]


def test_records_survive_a_restart(tmp_path: Path) -> None:
    desk = _desk(tmp_path)
    record = TrainingRecord(
        job_id=f"job-{'1' * 32}",
        title="t",
        data_path="/data.csv",
        samples=10,
        seed=1,
        joined_at=1.0,
        job_state="completed",
        rounds=[RoundRecord(number=1, attempt=0, samples=10, train_loss=0.5, epochs=1, at=2.0)],
    )
    with desk._lock:
        desk._records[record.job_id] = record
        desk._save()
    again = _desk(tmp_path)
    assert again.records() == [record]
    assert not again.records()[0].active
    again.resume()  # nothing to resume: the job has ended
    assert again._threads == {}
