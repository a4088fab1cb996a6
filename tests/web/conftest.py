"""Fixtures for the dashboard's tests: a real coordinator serving the ledger and its escrow,
`califusion ui` processes, Chromium.

Browser tests drive Debian's Chromium (``/usr/bin/chromium``, or ``CALIFUSION_CHROMIUM``) with
Playwright's Python client; no browser is downloaded. Without Chromium they are skipped, except
under CI (``CI`` set), where they fail. Screenshots go to ``test-artifacts/screenshots/``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from califusion.agent.ledger_client import HttpLedgerAPI
from califusion.cli.localserver import CoordinatorProcess
from califusion.crypto.identity import Identity
from califusion.crypto.keystore import load_keystore, save_keystore
from califusion.crypto.principal import Account
from califusion.ledger.types import Ok, TransferArg

from .harness import CHROMIUM, CHROMIUM_ARGS, FUNDS, PASSPHRASE, Stack, UiProcess, write_data


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One coordinator serving the ledger and its escrow (as `califusion coordinator serve` does
    by default); its operator mints ``FUNDS`` to each dashboard's user."""
    root = tmp_path_factory.mktemp("dashboard")
    data = write_data(root / "data")
    server = CoordinatorProcess.in_folder(root, ledger_passphrase=PASSPHRASE)
    with server:
        operator_keystore = server.operator_keystore
        operator = load_keystore(operator_keystore, PASSPHRASE)
        uis = []
        principals = {}
        ledger_args = ["--ledger-key", str(operator_keystore)]  # the ledger: the coordinator
        with HttpLedgerAPI(server.url, operator) as mint:
            for name in ("publisher", "trainer-a", "trainer-b", "buyer"):
                keystore = root / "keys" / f"{name}.json"
                identity = Identity.generate()
                save_keystore(keystore, identity, PASSPHRASE, name=name, scrypt_n=2**12)
                principals[name] = identity.principal.to_text()
                minted = mint.icrc1_transfer(TransferArg(Account(identity.principal), FUNDS))
                assert isinstance(minted, Ok)
                user_home = root / f"home-{name}"
                ui = UiProcess(name, keystore, user_home, server.url, extra_args=ledger_args)
                uis.append(ui.start())
        try:
            for ui in uis:
                ui.wait_url()
            yield Stack(
                root=root,
                coordinator=server,
                publisher=uis[0],
                trainers=uis[1:3],
                buyer=uis[3],
                data=data,
                ledger_url=server.url,
                principals=principals,
            )
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
