"""The money of a job, from the command line: real `califusion` processes, one coordinator
that serves the ledger and escrow (as `califusion coordinator serve` does by default).

The operator mints with `wallet mint`; a publisher without funds is told its balance; funded,
it opens the job (terms signed, pool in escrow); two trainers stake (ICRC-2 approve + collect,
and a memo'd transfer) and train two rounds; the escrow pays rewards and refunds stakes exactly
by the payout rule; a buyer buys the model, gets the key from the publisher's `job run`, and
downloads it; the sale's proceeds are split by the rule too.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.numpy import load_file

from califusion.agent.escrow_client import HttpEscrowAPI
from califusion.agent.ledger_client import HttpLedgerAPI
from califusion.cli.localserver import CoordinatorProcess
from califusion.crypto.identity import Identity
from califusion.crypto.keystore import load_keystore
from califusion.crypto.principal import Account
from califusion.ledger.escrow import split
from califusion.ledger.escrow_store import EscrowStatus
from califusion.ledger.escrow_terms import BPS
from califusion.ml.data import load_dataset
from califusion.protocol import JobSpec
from califusion.protocol.payout import format_tokens

pytestmark = pytest.mark.e2e
CLI = [sys.executable, "-m", "califusion.cli"]
PASSPHRASE = "a long enough passphrase"
CFT = 100_000_000
FEE = 10_000
START = 100 * CFT


def _run(env: dict[str, str], cwd: Path, *args: str, ok: bool = True) -> str:
    done = subprocess.run(
        [*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=180, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == (0 if ok else 1), output
    assert "Traceback" not in output
    return output


def test_the_money_of_a_job_from_the_command_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {
        **os.environ,
        "CALIFUSION_HOME": str(home),
        "CALIFUSION_PASSPHRASE": PASSPHRASE,
        "COLUMNS": "250",
        "PYTHONUNBUFFERED": "1",
    }
    with CoordinatorProcess.in_folder(tmp_path, ledger_passphrase=PASSPHRASE) as server:
        env["CALIFUSION_COORDINATOR"] = server.url
        _money_flow(tmp_path, env, server.url, server.operator_keystore)


def _money_flow(tmp_path: Path, env: dict[str, str], url: str, operator_keystore: Path) -> None:
    who = {}
    for name in ("pub", "t1", "t2", "buyer"):
        _run(env, tmp_path, "id", "new", "--keystore", f"{name}.json")
        who[name] = load_keystore(tmp_path / f"{name}.json", PASSPHRASE)
    _run(env, tmp_path, "data", "synthetic", "--out", "data", "--devices", "2", "--rounds", "2")
    spec = JobSpec.model_validate_json((tmp_path / "data" / "job.json").read_text())
    pool, stake, price = spec.reward_pool, spec.stake, spec.price
    assert pool > 0 and stake > 0 and price is not None  # the example job moves money

    def mint(name: str, amount: str) -> None:
        principal = who[name].principal.to_text()
        minted = _run(
            env, tmp_path, "wallet", "mint", principal, amount, "--keystore", str(operator_keystore)
        )
        assert "minted" in minted

    # a publisher without funds: a clear error naming its balance and the amount needed
    broke = _run(
        env,
        tmp_path,
        "job",
        "create",
        "data/job.json",
        "--open",
        "--validation",
        "data/validation.npz",
        "--keystore",
        "pub.json",
        ok=False,
    )
    assert "balance" in broke and "0.00000000 CFT" in broke and "needs" in broke, broke
    job = re.search(r"job-[0-9a-f]{32}", broke)
    assert job, broke
    job_id = job.group(0)
    for name in ("pub", "t1", "t2", "buyer"):
        mint(name, "100")
    opened = _run(env, tmp_path, "job", "open", job_id, "--keystore", "pub.json")
    assert "is open" in opened and "escrow" in opened

    joined = _run(
        env,
        tmp_path,
        "trainer",
        "join",
        job_id,
        "--data",
        "data/trainer-00.csv",
        "--keystore",
        "t1.json",
    )
    assert "balance 100.00000000 CFT" in joined and "by approve" in joined, joined
    joined = _run(
        env,
        tmp_path,
        "trainer",
        "join",
        job_id,
        "--data",
        "data/trainer-01.csv",
        "--stake-method",
        "transfer",
        "--keystore",
        "t2.json",
    )
    assert "by transfer" in joined and "pending" in joined, joined
    assert "round 1" in _run(env, tmp_path, "job", "start", job_id, "--keystore", "pub.json")

    trainers = [
        subprocess.Popen(
            [
                *CLI,
                "trainer",
                "run",
                job_id,
                "--data",
                f"data/trainer-0{i}.csv",
                "--keystore",
                f"t{i + 1}.json",
                "--timeout",
                "150",
            ],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    publisher = subprocess.Popen(
        [
            *CLI,
            "job",
            "run",
            job_id,
            "--keystore",
            "pub.json",
            "--timeout",
            "150",
            "--sell-for",
            "150",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        served = _read_until(publisher, "on offer")
        for trainer in trainers:
            out, _ = trainer.communicate(timeout=90)
            assert trainer.returncode == 0, out
            assert "ended completed" in out
        assert "ended completed" in served and "2 round(s) recorded, completed" in served

        with HttpEscrowAPI(url, Identity.generate()) as escrow:
            status = _wait_for(escrow, job_id, payments=2)
            terms = status.terms
            assert terms is not None and status.stakes == {
                who["t1"].principal: stake,
                who["t2"].principal: stake,
            }
        samples = {
            who[f"t{i + 1}"].principal: load_dataset(
                tmp_path / "data" / f"trainer-0{i}.csv", spec.data_schema
            ).num_samples
            for i in range(2)
        }
        weights = {p: n * spec.rounds for p, n in samples.items()}  # Σ samples over rounds
        reward = split(pool, weights)
        t1, t2 = who["t1"].principal, who["t2"].principal
        expected = {
            "pub": START - pool - FEE,
            # approve (fee) + collect (stake + fee); payout: stake + reward - fee
            "t1": START - FEE - (stake + FEE) + (stake + reward[t1] - FEE),
            # one transfer (stake + fee); payout: stake + reward - fee
            "t2": START - (stake + FEE) + (stake + reward[t2] - FEE),
            "buyer": START,
        }
        assert _balances(url, who) == expected

        bought = _run(
            env, tmp_path, "model", "buy", job_id, "--timeout", "90", "--keystore", "buyer.json"
        )
        assert f"paid {format_tokens(price)} into escrow" in bought, bought
        assert "granted you the model key" in bought
        again = _run(env, tmp_path, "model", "buy", job_id, "--no-wait", "--keystore", "buyer.json")
        assert "already" in again and "not paying again" in again
        _run(
            env,
            tmp_path,
            "model",
            "download",
            job_id,
            "--out",
            "bought.safetensors",
            "--keystore",
            "buyer.json",
        )
        weights_file = load_file(str(tmp_path / "bought.safetensors"))
        assert {w.shape for w in weights_file.values()} == {(60, 10), (10,)}

        with HttpEscrowAPI(url, Identity.generate()) as escrow:
            _wait_for(escrow, job_id, payments=5)
        publisher_part = price * terms.sale_publisher_bps // BPS
        shares = split(price - publisher_part, weights)
        expected["pub"] += publisher_part - FEE
        expected["t1"] += shares[t1] - FEE
        expected["t2"] += shares[t2] - FEE
        expected["buyer"] -= price + FEE
        assert _balances(url, who) == expected
        shown = _run(env, tmp_path, "job", "status", job_id, "--keystore", "t1.json")
        assert "outcome" in shown and "completed" in shown, shown
        assert "payments made" in shown and "rounds recorded" in shown and "2/2" in shown, shown
    finally:
        publisher.send_signal(signal.SIGINT)
        rest, _ = publisher.communicate(timeout=30)
        for trainer in trainers:
            if trainer.poll() is None:
                trainer.kill()
                trainer.communicate()
    assert publisher.returncode == 0, rest
    assert "granted the model key to " + who["buyer"].principal.to_text() in rest
    assert "stopped selling" in rest


def _read_until(process: subprocess.Popen[str], marker: str, timeout: float = 150) -> str:
    """The process's output up to the line holding ``marker``."""
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return "".join(seen)
    raise AssertionError("".join(seen))


def _wait_for(escrow: HttpEscrowAPI, job_id: str, *, payments: int) -> EscrowStatus:
    deadline = time.monotonic() + 30
    while (status := escrow.status(job_id)).payments_made < payments:
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert status.payments_made == payments, status
    return status


def _balances(url: str, who: dict[str, Identity]) -> dict[str, int]:
    with HttpLedgerAPI(url, Identity.generate()) as ledger:
        return {name: ledger.icrc1_balance_of(Account(i.principal)) for name, i in who.items()}
