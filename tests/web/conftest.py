"""Fixtures for the dashboard's tests: a real coordinator, real `califusion ui` processes, Chromium.

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

from califusion.cli.localserver import CoordinatorProcess
from califusion.crypto.identity import Identity
from califusion.crypto.keystore import save_keystore

from .harness import CHROMIUM, CHROMIUM_ARGS, PASSPHRASE, Stack, UiProcess, write_data


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("dashboard")
    data = write_data(root / "data")
    server = CoordinatorProcess(
        database_url=f"sqlite:///{root / 'coordinator.db'}",
        blob_dir=root / "blobs",
        log_path=root / "coordinator.log",
    )
    with server:
        uis = []
        for name in ("publisher", "trainer-a", "trainer-b"):
            keystore = root / "keys" / f"{name}.json"
            save_keystore(keystore, Identity.generate(), PASSPHRASE, name=name, scrypt_n=2**12)
            uis.append(UiProcess(name, keystore, root / f"home-{name}", server.url).start())
        try:
            for ui in uis:
                ui.wait_url()
            yield Stack(root, server, uis[0], uis[1:], data)
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
