"""``califusion ledger init`` and ``verify``: one edited row in the database is reported."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from sqlalchemy import update
from typer.testing import CliRunner

from califusion.cli.ledger import app as ledger_app
from califusion.crypto.identity import Identity
from califusion.crypto.keystore import read_public
from califusion.crypto.principal import Account
from califusion.ledger import Ok, TransferArg
from califusion.ledger.schema import balances_table, blocks_table
from califusion.ledger.setup import open_ledger

from .helpers import ALICE, BOB

app = typer.Typer()
app.add_typer(ledger_app, name="ledger")


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = open_ledger(url, Identity.generate())
    minter = ledger.config.minting_account.owner
    assert isinstance(ledger.icrc1_transfer(minter, TransferArg(Account(ALICE), 10**6)), Ok)
    assert isinstance(ledger.icrc1_transfer(ALICE, TransferArg(Account(BOB), 5_000)), Ok)
    ledger.close()
    return url


def _verify(url: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["ledger", "verify", "--database-url", url])
    return result.exit_code, result.output


def _edit(url: str, statement: object) -> None:
    ledger = open_ledger(url, Identity.generate())
    with ledger.store.engine.begin() as conn:
        conn.execute(statement)  # type: ignore[call-overload]
    ledger.close()


def test_a_clean_ledger_verifies(database: str) -> None:
    code, output = _verify(database)
    assert code == 0, output
    assert output.startswith("ok: 2 blocks verified, total supply 990000, 2 accounts, tip ")


def test_an_edited_balance_is_reported(database: str) -> None:
    _edit(database, update(balances_table).values(amount=balances_table.c.amount + 1))
    code, output = _verify(database)
    assert code == 1
    assert "2 discrepancies in 2 blocks:" in output
    assert f"balance of {Account(BOB)}: expected 5000, found 5001" in output


def test_an_edited_block_is_reported(database: str) -> None:
    _edit(database, update(blocks_table).where(blocks_table.c.idx == 1).values(amount=6_000))
    code, output = _verify(database)
    assert code == 1
    assert "block 1: amount column: expected 5000, found 6000" in output


def test_a_missing_database_is_one_clear_line(tmp_path: Path) -> None:
    code, output = _verify(f"sqlite:///{tmp_path / 'nowhere.db'}")
    assert code == 1 and "no ledger database at" in output


def test_init_creates_the_operator_and_the_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALIFUSION_HOME", str(tmp_path))
    monkeypatch.setenv("CALIFUSION_PASSPHRASE", "operator passphrase")
    first = CliRunner().invoke(app, ["ledger", "init"])
    assert first.exit_code == 0, first.output
    keystore = tmp_path / "ledger-operator.json"
    minting = read_public(keystore).principal.to_text()
    assert first.output.splitlines()[-1] == minting
    assert (tmp_path / "coordinator" / "ledger.db").exists()
    again = CliRunner().invoke(app, ["ledger", "init"])  # idempotent: same operator
    assert again.exit_code == 0 and again.output.splitlines()[-1] == minting
    code, output = _verify(f"sqlite:///{tmp_path / 'coordinator' / 'ledger.db'}")
    assert code == 0 and output.startswith("ok: 0 blocks verified")
