"""Helpers for the dashboard's tests: `califusion ui` processes, test data, screenshots."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import numpy as np
from playwright.sync_api import Page

from califusion.cli.localserver import CoordinatorProcess
from califusion.ml.data import write_csv, write_npz, write_parquet
from califusion.ml.partition import synthetic
from califusion.ml.spec import Column, DataSchema, LabelSpec

CHROMIUM = Path(os.environ.get("CALIFUSION_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
PASSPHRASE = "correct horse battery staple"
N_FEATURES = 60
N_CLASSES = 10


def schema() -> DataSchema:
    """The schema the browser test's job form describes (x*60, label, 10 classes)."""
    return DataSchema(
        features=[Column(name=f"x{i}", dtype="float32") for i in range(N_FEATURES)],
        label=LabelSpec(name="label", dtype="int64", n_classes=N_CLASSES),
    )


@dataclass
class UiProcess:
    """One `califusion ui` process for one keystore, started as a user would start it."""

    name: str
    keystore: Path
    home: Path
    coordinator: str
    extra_args: list[str] = field(default_factory=list)
    process: subprocess.Popen[str] | None = None
    url: str = ""
    stderr: list[str] = field(default_factory=list)

    def start(self) -> UiProcess:
        env = {**os.environ, "CALIFUSION_HOME": str(self.home), "UI_PASSPHRASE": PASSPHRASE}
        command = [
            sys.executable, "-c", "from califusion.cli.main import main; main()", "ui",
            "--port", "0", "--coordinator", self.coordinator, "--keystore", str(self.keystore),
            "--passphrase-env", "UI_PASSPHRASE", "--name", self.name, *self.extra_args,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
        )
        threading.Thread(target=self._drain, args=(self.process.stderr,), daemon=True).start()
        return self

    def _drain(self, stream: IO[str] | None) -> None:
        for line in stream or ():
            self.stderr.append(line)

    def wait_url(self) -> str:
        """The launch URL the process prints on stdout."""
        assert self.process is not None and self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.startswith("http://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"{self.name}: no launch URL; stderr: {''.join(self.stderr)}")
        self.url = line
        return line

    @property
    def origin(self) -> str:
        return self.url.split("/login", 1)[0]

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@dataclass
class Stack:
    """A coordinator serving the ledger and escrow, and four dashboards (publisher, two trainers,
    a buyer) with their data files; every dashboard's user starts with ``FUNDS`` on the ledger."""

    root: Path
    coordinator: CoordinatorProcess
    publisher: UiProcess
    trainers: list[UiProcess]
    buyer: UiProcess
    data: dict[str, Path]
    ledger_url: str = ""
    principals: dict[str, str] = field(default_factory=dict)


FUNDS = 20 * 10**8  # 20 CFT minted to each dashboard's user


def write_data(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True)
    devices = synthetic(1.0, 1.0, num_devices=12, seed=11)
    x = np.concatenate([x for x, _ in devices])
    y = np.concatenate([y for _, y in devices])
    order = np.random.default_rng(5).permutation(len(y))[:900]
    parts = [(x[idx], y[idx]) for idx in np.split(order, 3)]
    files = {
        "train-a": folder / "trainer-a.csv",
        "train-b": folder / "trainer-b.parquet",
        "validation": folder / "publisher-validation.npz",
        "bad": folder / "broken.csv",
    }
    write_csv(files["train-a"], *parts[0], schema())
    write_parquet(files["train-b"], *parts[1], schema())
    write_npz(files["validation"], *parts[2], schema())
    lines = files["train-a"].read_text().splitlines()
    cells = lines[5].split(",")  # data row 5 (line 6 of the file)
    cells[3] = "n/a"  # column x3
    lines[5] = ",".join(cells)
    files["bad"].write_text("\n".join(lines) + "\n")
    return files


WIDTHS = ((1280, 900), (390, 844))


def settle(page: Page) -> None:
    """Wait two animation frames, so layout (and the charts' resize) has happened."""
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def shoot(page: Page, name: str) -> list[Path]:
    """Full-page screenshots of ``page`` at 1280 px and at 390 px wide; back to 1280 after."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    paths = []
    for width, height in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        settle(page)
        path = SCREENSHOTS / f"{name}-{width}.png"
        page.screenshot(path=str(path), full_page=True)
        paths.append(path)
    page.set_viewport_size({"width": WIDTHS[0][0], "height": WIDTHS[0][1]})
    return paths
