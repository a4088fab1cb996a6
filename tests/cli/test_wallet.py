"""``califusion wallet`` against a real ledger server: what a user types, what they read back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner, Result

from califusion.cli.ledger import create_ledger_app
from califusion.cli.localserver import serving
from califusion.cli.wallet import app as wallet_app
from califusion.crypto.identity import Identity
from califusion.crypto.keystore import save_keystore
from califusion.ledger.setup import open_ledger

PASSPHRASE = "a wallet passphrase"

Wallet = Callable[..., str]  # wallet(who, command, *args, code=0) -> the output, one line
app = typer.Typer()
app.add_typer(wallet_app, name="wallet")


@pytest.fixture
def ledger_url(tmp_path: Path, operator: Identity) -> Iterator[str]:
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}", operator)
    with serving(create_ledger_app(ledger), name="ledger") as url:
        yield url
    ledger.close()


@pytest.fixture
def operator() -> Identity:
    return Identity.generate()


@pytest.fixture
def keystores(tmp_path: Path, operator: Identity) -> dict[str, tuple[Path, str]]:
    """name → (keystore path, principal text)."""
    found = {}
    for name, identity in (
        ("operator", operator),
        ("alice", Identity.generate()),
        ("bob", Identity.generate()),
    ):
        path = tmp_path / f"{name}.json"
        save_keystore(path, identity, PASSPHRASE, scrypt_n=2**10)
        found[name] = (path, identity.principal.to_text())
    return found


@pytest.fixture
def wallet(
    ledger_url: str, keystores: dict[str, tuple[Path, str]], monkeypatch: pytest.MonkeyPatch
) -> Wallet:
    monkeypatch.setenv("CALIFUSION_PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("CALIFUSION_LEDGER", ledger_url)
    monkeypatch.setenv("COLUMNS", "250")
    runner = CliRunner()

    def run(who: str, command: str, *args: str, code: int = 0) -> str:
        keystore = str(keystores[who][0])
        result: Result = runner.invoke(app, ["wallet", command, "--keystore", keystore, *args])
        assert result.exit_code == code, result.output
        assert "Traceback" not in result.output
        return " ".join(result.output.split())  # rich wraps long lines

    return run


def test_mint_transfer_approve_and_history(
    wallet: Wallet, keystores: dict[str, tuple[Path, str]]
) -> None:
    run = wallet
    alice, bob = keystores["alice"][1], keystores["bob"][1]
    assert run("operator", "mint", alice, "100") == f"minted 100.0 CFT to {alice}: block 0"
    assert run("alice", "balance") == f"{alice} 100.0 CFT"
    assert run("alice", "transfer", bob, "1.5", "--memo", "rent") == (
        f"sent 1.5 CFT to {bob} (fee 0.0001 CFT): block 1"
    )
    assert run("bob", "balance") == f"{bob} 1.5 CFT"
    assert run("bob", "balance", alice) == f"{alice} 98.4999 CFT"
    approved = run("alice", "approve", bob, "10", "--expires-in", "3600")
    assert approved.startswith(f"approved {bob} to spend up to 10.0 CFT until ")
    assert approved.endswith("(fee 0.0001 CFT): block 2")
    burned = run("bob", "transfer", keystores["operator"][1], "0.5")
    assert burned == "burned 0.5 CFT (sent to the minting account): block 3"
    history = run("alice", "history")
    for expected in ("2approve", "1xfer", "1mint", "rent", "(mint)", "1.5", "you"):
        assert expected in history
    assert history.index("2approve") < history.index("1xfer") < history.index("1mint")
    assert "1burn" in run("bob", "history")


def test_only_the_minting_identity_mints(
    wallet: Wallet, keystores: dict[str, tuple[Path, str]]
) -> None:
    run = wallet
    alice, operator = keystores["alice"][1], keystores["operator"][1]
    refused = run("alice", "mint", alice, "5", code=1)
    assert f"only the ledger's minting identity ({operator}) can mint; you are {alice}" in refused
    assert run("alice", "balance") == f"{alice} 0.0 CFT"


def test_amounts_and_accounts_are_checked(
    wallet: Wallet, keystores: dict[str, tuple[Path, str]]
) -> None:
    run = wallet
    alice, bob = keystores["alice"][1], keystores["bob"][1]
    run("operator", "mint", alice, "2")
    assert "CFT has 8 decimals; '0.000000001' has 9" in run(
        "alice", "transfer", bob, "0.000000001", code=1
    )
    assert "amount '-1' is negative" in run("alice", "transfer", bob, "--", "-1", code=1)
    assert "amount 'abc' is not a number of CFT" in run("alice", "transfer", bob, "abc", code=1)
    assert "insufficient funds: the balance is 2.0 CFT" in run(
        "alice", "transfer", bob, "2", code=1
    )
    assert "bad checksum" in run("alice", "transfer", bob[:-1] + "a", "1", code=1)


def test_an_unreachable_ledger_is_one_clear_line(
    keystores: dict[str, tuple[Path, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALIFUSION_PASSPHRASE", PASSPHRASE)
    result = CliRunner().invoke(
        app,
        ["wallet", "balance", "--ledger", "http://127.0.0.1:9", "--keystore",
         str(keystores["alice"][0])],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "is unreachable" in result.output and "Traceback" not in result.output
