"""The CLI as a newcomer uses it: real `califusion` processes against a real coordinator.

Identities, simulation data, a job created from a spec file, two trainers joining and running
in their own processes, the publisher serving the job, status and results — then the bad
inputs a user is likely to make, each answered by one clear line and exit code 1.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from safetensors.numpy import load_file

from califusion.cli.localserver import CoordinatorProcess

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "califusion.cli"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CoordinatorProcess]:
    with CoordinatorProcess.in_folder(tmp_path) as process:
        yield process


def _env(tmp_path: Path, server: CoordinatorProcess) -> dict[str, str]:
    return {
        **os.environ,
        "CALIFUSION_HOME": str(tmp_path / "home"),
        "CALIFUSION_PASSPHRASE": "a long enough passphrase",
        "CALIFUSION_COORDINATOR": server.url,
        "COLUMNS": "200",
    }


def _run(env: dict[str, str], cwd: Path, *args: str, ok: bool = True) -> str:
    done = subprocess.run(
        [*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    output = done.stdout + done.stderr
    if ok:
        assert done.returncode == 0, output
    else:
        assert done.returncode == 1, output
        assert "Traceback" not in output
    return output


def test_publish_train_and_fetch_results(tmp_path: Path, server: CoordinatorProcess) -> None:
    env = _env(tmp_path, server)
    for name in ("pub", "t1", "t2"):
        _run(env, tmp_path, "id", "new", "--keystore", f"{name}.json")
    _run(env, tmp_path, "data", "synthetic", "--out", "data", "--devices", "2", "--rounds", "3")
    created = _run(
        env, tmp_path, "job", "create", "data/job.json", "--validation", "data/validation.npz",
        "--open", "--keystore", "pub.json",
    )  # fmt: skip
    match = re.search(r"job-[0-9a-f]{32}", created)
    assert match, created
    job = match.group(0)
    for i, name in enumerate(("t1", "t2")):
        joined = _run(
            env, tmp_path, "trainer", "join", job, "--data", f"data/trainer-0{i}.csv",
            "--keystore", f"{name}.json",
        )  # fmt: skip
        assert "pending" in joined
    assert "round 1" in _run(env, tmp_path, "job", "start", job, "--keystore", "pub.json")

    trainers = []
    for i, name in enumerate(("t1", "t2")):
        command = [*CLI, "trainer", "run", job, "--data", f"data/trainer-0{i}.csv"]
        command += ["--keystore", f"{name}.json", "--timeout", "120"]
        trainers.append(
            subprocess.Popen(
                command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        )
    served = _run(env, tmp_path, "job", "run", job, "--keystore", "pub.json", "--timeout", "120")
    for trainer in trainers:
        out, _ = trainer.communicate(timeout=60)
        assert trainer.returncode == 0, out
    assert "ended completed" in served
    assert "val acc" in served

    status = _run(env, tmp_path, "job", "status", job, "--keystore", "pub.json")
    assert "completed" in status and status.count("closed") == 3
    _run(
        env, tmp_path, "job", "results", job, "--out", "model.safetensors", "--keystore", "pub.json"
    )
    weights = load_file(str(tmp_path / "model.safetensors"))
    assert {w.shape for w in weights.values()} == {(60, 10), (10,)}

    # the same job cannot be started again: a clear conflict, state unchanged
    again = _run(env, tmp_path, "job", "start", job, "--keystore", "pub.json", ok=False)
    assert "error:" in again and "completed" in again


def test_bad_inputs_get_one_clear_line(tmp_path: Path, server: CoordinatorProcess) -> None:
    env = _env(tmp_path, server)
    _run(env, tmp_path, "id", "new", "--keystore", "pub.json")
    _run(env, tmp_path, "data", "synthetic", "--out", "data", "--devices", "1", "--rounds", "2")

    wrong = _run(
        {**env, "CALIFUSION_PASSPHRASE": "not it"}, tmp_path, "job", "status", "job-" + "0" * 32,
        "--keystore", "pub.json", ok=False,
    )  # fmt: skip
    assert "wrong passphrase" in wrong

    unknown = _run(
        env, tmp_path, "job", "status", "job-" + "0" * 32, "--keystore", "pub.json", ok=False
    )
    assert "not found" in unknown.lower() or "no job" in unknown.lower()

    (tmp_path / "bad.toml").write_text('title = "x"\nrounds = "many"\n')
    malformed = _run(env, tmp_path, "job", "create", "bad.toml", "--keystore", "pub.json", ok=False)
    assert "rounds" in malformed and "model" in malformed

    (tmp_path / "broken.json").write_text("{ not json")
    broken = _run(env, tmp_path, "job", "create", "broken.json", "--keystore", "pub.json", ok=False)
    assert "not valid JSON" in broken

    rows = (tmp_path / "data" / "trainer-00.csv").read_text().splitlines()
    cells = rows[2].split(",")
    cells[7] = "NaN"
    rows[2] = ",".join(cells)
    (tmp_path / "bad.csv").write_text("\n".join(rows) + "\n")
    schema = _run(env, tmp_path, "data", "check", "bad.csv", "--spec", "data/job.json", ok=False)
    assert 'row 2, column "x7"' in schema
