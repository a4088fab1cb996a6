"""Settings, the command line, and one real server process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from califusion.coordinator.server import parse_args
from califusion.core.settings import MIB, CoordinatorSettings
from califusion.crypto.encoding import b64e
from califusion.crypto.identity import Identity
from califusion.crypto.signing import sign_request


def test_settings_defaults_follow_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALIFUSION_HOME", str(tmp_path))
    monkeypatch.setenv("CALIFUSION_MAX_BLOB_BYTES", "1024")
    settings = CoordinatorSettings()
    assert settings.database_url == f"sqlite:///{tmp_path / 'coordinator.db'}"
    assert settings.blob_dir == tmp_path / "blobs"
    assert settings.max_blob_bytes == 1024
    assert CoordinatorSettings(home=tmp_path, max_blob_bytes=256 * MIB).request_window_s == 60.0


def test_command_line_overrides(tmp_path: Path) -> None:
    settings = parse_args(
        ["--port", "9123", "--database-url", "postgresql+psycopg://x/y", "--blob-dir", "/b"]
    )
    assert (settings.port, settings.database_url, settings.blob_dir) == (
        9123,
        "postgresql+psycopg://x/y",
        Path("/b"),
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.e2e
def test_python_dash_m_serves_signed_requests(tmp_path: Path) -> None:
    port = _free_port()
    command = [
        sys.executable,
        "-m",
        "califusion.coordinator",
        "--port",
        str(port),
        "--database-url",
        f"sqlite:///{tmp_path / 'c.db'}",
        "--blob-dir",
        str(tmp_path / "blobs"),
        "--home",
        str(tmp_path),
    ]
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.1)
        me = Identity.generate()
        public = me.public()
        body = (
            f'{{"signing_public":"{b64e(public.signing_public)}",'
            f'"agreement_public":"{b64e(public.agreement_public)}"}}'
        ).encode()
        headers = sign_request(me, "POST", "/v1/principals", body, time.time())
        headers["content-type"] = "application/json"
        registered = httpx.post(f"{base}/v1/principals", content=body, headers=headers)
        assert registered.status_code == 200, registered.text
        assert registered.json()["principal"] == me.principal.to_text()
        headers = sign_request(me, "GET", "/v1/jobs?state=open", b"", time.time())
        listed = httpx.get(f"{base}/v1/jobs", params={"state": "open"}, headers=headers)
        assert listed.status_code == 200, listed.text
        assert listed.json() == []
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
    output = (tmp_path / "server.log").read_text()
    assert b64e(public.signing_public) not in output  # keys are never logged
