"""Fixtures for the dashboard's tests: a real coordinator and ledger, `califusion ui` processes,
Chromium.

Browser tests drive Debian's Chromium (``/usr/bin/chromium``, or ``CALIFUSION_CHROMIUM``) with
Playwright's Python client; no browser is downloaded. Without Chromium they are skipped, except
under CI (``CI`` set), where they fail. Screenshots go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, sync_playwright

from califusion.agent.ledger_client import HttpLedgerAPI
from califusion.cli.ledger import create_ledger_app
from califusion.cli.localserver import CoordinatorProcess
from califusion.crypto.identity import Identity
from califusion.crypto.keystore import save_keystore
from califusion.crypto.principal import Account
from califusion.ledger.setup import open_ledger
from califusion.ledger.types import Ok, TransferArg

from .harness import CHROMIUM, CHROMIUM_ARGS, FUNDS, PASSPHRASE, Stack, UiProcess, write_data


@contextmanager
def ledger_server(database: Path, operator: Identity) -> Iterator[str]:
    """The embedded ledger served over HTTP on a loopback port, as `califusion ledger serve`."""
    ledger = open_ledger(f"sqlite:///{database}", operator)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    config = uvicorn.Config(create_ledger_app(ledger), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        ledger.close()


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("dashboard")
    data = write_data(root / "data")
    server = CoordinatorProcess(
        database_url=f"sqlite:///{root / 'coordinator.db'}",
        blob_dir=root / "blobs",
        log_path=root / "coordinator.log",
    )
    operator = Identity.generate()
    with server, ledger_server(root / "ledger.db", operator) as ledger_url:
        uis = []
        principals = {}
        ledger_args = [
            "--ledger",
            ledger_url,
            "--ledger-key",
            operator.public().signing_public.hex(),
        ]
        with HttpLedgerAPI(ledger_url, operator) as mint:
            for name in ("publisher", "trainer-a", "trainer-b"):
                keystore = root / "keys" / f"{name}.json"
                identity = Identity.generate()
                save_keystore(keystore, identity, PASSPHRASE, name=name, scrypt_n=2**12)
                principals[name] = identity.principal.to_text()
                minted = mint.icrc1_transfer(TransferArg(Account(identity.principal), FUNDS))
                assert isinstance(minted, Ok)
                home = root / f"home-{name}"
                ui = UiProcess(name, keystore, home, server.url, extra_args=ledger_args)
                uis.append(ui.start())
        try:
            for ui in uis:
                ui.wait_url()
            yield Stack(root, server, uis[0], uis[1:], data, ledger_url, principals)
        finally:
            for ui in uis:
                ui.stop()


def _chromium_or_skip() -> Path:
    if CHROMIUM.exists():
        return CHROMIUM
    reason = (
        f"Chromium not found at {CHROMIUM}: install it with "
        "`apt-get install -y chromium chromium-driver` (or set CALIFUSION_CHROMIUM)"
    )
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """A headless Debian Chromium driven by Playwright."""
    executable = _chromium_or_skip()
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(executable), args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()
