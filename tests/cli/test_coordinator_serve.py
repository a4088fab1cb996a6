"""`califusion coordinator serve` serves the ledger and its escrow by default (real processes)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from califusion.agent.escrow_client import HttpEscrowAPI
from califusion.agent.ledger_client import HttpLedgerAPI
from califusion.cli.localserver import CoordinatorProcess, free_port
from califusion.core.errors import NotFound
from califusion.crypto.identity import Identity
from califusion.crypto.keystore import load_keystore
from califusion.crypto.principal import Account

pytestmark = pytest.mark.e2e
PASSPHRASE = "the operator's passphrase"


def test_first_start_creates_the_operator_and_serves_ledger_and_escrow(tmp_path: Path) -> None:
    with CoordinatorProcess.in_folder(tmp_path, ledger_passphrase=PASSPHRASE) as server:
        operator = load_keystore(server.operator_keystore, PASSPHRASE)
        assert (tmp_path / "ledger.db").exists()  # beside the coordinator's database
        with HttpLedgerAPI(server.url, Identity.generate()) as ledger:
            assert ledger.icrc1_minting_account() == Account(operator.principal)
        with HttpEscrowAPI(server.url, Identity.generate()) as escrow:
            assert escrow.status("job-" + "0" * 32).terms is None
    # a restart finds the keystore and the same ledger
    with (
        CoordinatorProcess.in_folder(tmp_path, ledger_passphrase=PASSPHRASE) as server,
        HttpLedgerAPI(server.url, Identity.generate()) as ledger,
    ):
        assert ledger.icrc1_minting_account() == Account(operator.principal)


def _serve(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "califusion.cli", "coordinator", "serve"]
    command += ["--port", str(free_port()), *args]
    return subprocess.run(
        command,
        env={**env, "CALIFUSION_HOME": str(tmp_path / "home"), "COLUMNS": "200"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_a_passphrase_it_says_what_to_set(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"CALIFUSION_PASSPHRASE", "CALIFUSION_LEDGER_OPERATOR_PASSPHRASE"}
    }
    done = _serve(tmp_path, env=env)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    assert "CALIFUSION_LEDGER_OPERATOR_PASSPHRASE" in output and "--no-ledger" in output
    assert "Traceback" not in output
    assert not (tmp_path / "home" / "ledger-operator.json").exists()

    both = _serve(tmp_path, "--no-ledger", "--ledger-url", "http://127.0.0.1:1", env=env)
    assert both.returncode == 1 and "choose one" in both.stdout + both.stderr


def test_no_ledger_serves_none(tmp_path: Path) -> None:
    with (
        CoordinatorProcess.in_folder(tmp_path) as server,
        HttpEscrowAPI(server.url, Identity.generate()) as escrow,
        pytest.raises(NotFound),
    ):
        escrow.status("job-" + "0" * 32)
