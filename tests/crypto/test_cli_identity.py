"""``califusion id``: new, show, export-public, driven through Typer's CliRunner."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from califusion.cli.identity import app as identity_app
from califusion.cli.identity import default_keystore_path
from califusion.crypto.identity import PublicIdentity
from califusion.crypto.keystore import load_keystore, read_keystore_info, read_public

PASSPHRASE = "correct horse battery"

app = typer.Typer()
app.add_typer(identity_app, name="id")


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.setenv("CALIFUSION_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("CF_PASS", PASSPHRASE)
    return CliRunner()


def _new(runner: CliRunner, *extra: str) -> str:
    result = runner.invoke(app, ["id", "new", "--passphrase-env", "CF_PASS", *extra])
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_default_keystore_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CALIFUSION_HOME", str(tmp_path))
    assert default_keystore_path() == tmp_path / "identity.json"
    monkeypatch.delenv("CALIFUSION_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert default_keystore_path() == tmp_path / "user" / ".califusion" / "identity.json"


def test_new_with_passphrase_from_env(runner: CliRunner) -> None:
    principal = _new(runner, "--name", "alice")
    path = default_keystore_path()
    assert read_public(path).principal.to_text() == principal
    assert read_keystore_info(path).name == "alice"
    assert load_keystore(path, PASSPHRASE).principal.to_text() == principal
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_new_prompts_twice_with_hidden_input(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "prompted.json"
    result = runner.invoke(
        app, ["id", "new", "--keystore", str(path)], input="first\nsecond\npw2\npw2\n"
    )
    assert result.exit_code == 0, result.output
    assert "first" not in result.output and "pw2" not in result.output  # hidden input
    assert "do not match" in result.output.lower()
    principal = result.stdout.strip().splitlines()[-1]
    assert load_keystore(path, "pw2").principal.to_text() == principal


def test_new_refuses_to_overwrite(runner: CliRunner) -> None:
    _new(runner)
    before = default_keystore_path().read_bytes()
    result = runner.invoke(app, ["id", "new", "--passphrase-env", "CF_PASS"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "already exists" in result.stderr
    assert "Traceback" not in result.output
    assert default_keystore_path().read_bytes() == before


def test_new_with_unset_passphrase_variable(runner: CliRunner) -> None:
    result = runner.invoke(app, ["id", "new", "--passphrase-env", "CF_NOT_SET"])
    assert result.exit_code == 1
    assert "CF_NOT_SET" in result.stderr
    assert not default_keystore_path().exists()


def test_show_needs_no_passphrase(runner: CliRunner) -> None:
    principal = _new(runner, "--name", "alice")
    result = runner.invoke(app, ["id", "show"], input="")
    assert result.exit_code == 0, result.output
    public = read_public(default_keystore_path())
    assert f"principal:        {principal}" in result.stdout
    assert "alice" in result.stdout
    assert public.to_dict()["signing_public"] in result.stdout
    assert public.to_dict()["agreement_public"] in result.stdout
    assert PASSPHRASE not in result.output


def test_show_check_accepts_the_right_passphrase(runner: CliRunner) -> None:
    _new(runner)
    result = runner.invoke(app, ["id", "show", "--check"], input=PASSPHRASE + "\n")
    assert result.exit_code == 0, result.output
    assert "passphrase:       ok" in result.stdout
    assert PASSPHRASE not in result.output


def test_show_check_wrong_passphrase(runner: CliRunner) -> None:
    _new(runner)
    result = runner.invoke(app, ["id", "show", "--check"], input="wrong\n")
    assert result.exit_code == 1
    path = default_keystore_path()
    assert result.stderr == f"error: wrong passphrase for keystore {path}\n"
    assert "Traceback" not in result.output


def test_show_missing_keystore(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["id", "show", "--keystore", str(tmp_path / "nope.json")])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no keystore at ")


def test_show_corrupt_keystore(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "corrupt.json"
    path.write_text("{not json")
    result = runner.invoke(app, ["id", "show", "--keystore", str(path)])
    assert result.exit_code == 1
    assert "is corrupt or not a keystore" in result.stderr


def test_export_public_to_stdout(runner: CliRunner) -> None:
    principal = _new(runner)
    result = runner.invoke(app, ["id", "export-public"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(data) == {"principal", "signing_public", "agreement_public"}
    assert PublicIdentity.from_dict(data).principal.to_text() == principal


def test_export_public_to_file(runner: CliRunner, tmp_path: Path) -> None:
    keystore = tmp_path / "k.json"
    _new(runner, "--keystore", str(keystore))
    out = tmp_path / "public.json"
    result = runner.invoke(
        app, ["id", "export-public", "--keystore", str(keystore), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert PublicIdentity.from_dict(json.loads(out.read_text())) == read_public(keystore)
