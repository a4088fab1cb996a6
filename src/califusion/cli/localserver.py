"""Local servers for the demo and the tests: a coordinator process, or an ASGI app in a thread.

Both listen on 127.0.0.1 only. :func:`serving` binds its socket before the server starts, so
the port it yields cannot be taken by anyone else in between.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

import httpx
import uvicorn
from starlette.types import ASGIApp

from califusion.core.errors import Unavailable


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serving(
    app: ASGIApp,
    *,
    port: int = 0,
    lifespan: Literal["on", "off"] = "on",
    timeout: float = 30.0,
    name: str = "server",
) -> Iterator[str]:
    """Serve ``app`` from a thread of this process until the block ends; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(128)
        bound = int(sock.getsockname()[1])
        config = uvicorn.Config(app, lifespan=lifespan, log_level="warning", access_log=False)
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name=f"{name}-{bound}", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                raise Unavailable(f"the {name} on port {bound} did not start")
            time.sleep(0.01)
        try:
            yield f"http://127.0.0.1:{bound}"
        finally:
            server.should_exit = True
            thread.join(timeout=20)
    finally:
        sock.close()


@dataclass
class CoordinatorProcess:
    database_url: str
    blob_dir: Path
    log_path: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None
    ledger_database_url: str | None = None  # check stakes and funding against this ledger
    # Serve the ledger and escrow as `califusion coordinator serve` does by default (operator
    # keystore under ``home``, passphrase from ``env``); off by default: most tests need no money.
    ledger: bool = False
    home: Path | None = None  # CALIFUSION_HOME of the process (default: beside the blobs)
    env: dict[str, str] = field(default_factory=dict)  # added to the process's environment

    @classmethod
    def in_folder(
        cls,
        folder: Path,
        *,
        database_url: str | None = None,
        ledger_database_url: str | None = None,
        ledger_passphrase: str | None = None,
    ) -> CoordinatorProcess:
        """A coordinator whose database (SQLite, unless ``database_url``), blobs, log and home
        all lie in ``folder``. With ``ledger_passphrase`` it serves the ledger and the escrow,
        its operator's keystore (:attr:`operator_keystore`) locked with that passphrase."""
        return cls(
            database_url=database_url or f"sqlite:///{folder / 'coordinator.db'}",
            blob_dir=folder / "blobs",
            log_path=folder / "coordinator.log",
            ledger_database_url=ledger_database_url,
            ledger=ledger_passphrase is not None,
            home=folder / "home",
            env={} if ledger_passphrase is None else {"CALIFUSION_PASSPHRASE": ledger_passphrase},
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def operator_keystore(self) -> Path:
        """Where a coordinator serving the ledger keeps its operator's keystore."""
        home = self.home if self.home is not None else self.blob_dir.parent
        return home / "ledger-operator.json"

    def start(self, timeout: float = 30.0) -> CoordinatorProcess:
        self.port = self.port or free_port()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        home = self.home if self.home is not None else self.blob_dir.parent
        env = {**os.environ, **self.env}
        if self.ledger:
            env["CALIFUSION_HOME"] = str(home)  # its key, the operator's keystore, ledger.db
            command = [sys.executable, "-m", "califusion.cli", "coordinator", "serve"]
        else:
            # where its key is made: beside its blobs, not in the user's home
            command = [sys.executable, "-m", "califusion.coordinator", "--home", str(home)]
        command += [
            "--port",
            str(self.port),
            "--database-url",
            self.database_url,
            "--blob-dir",
            str(self.blob_dir),
        ]
        if self.ledger_database_url is not None:
            command += ["--ledger-database-url", self.ledger_database_url]
        self.process = subprocess.Popen(  # noqa: S603 - our own module, fixed arguments
            command, stdout=log, stderr=subprocess.STDOUT, env=env
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise Unavailable(
                    f"coordinator exited with code {self.process.returncode}; see {self.log_path}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise Unavailable(f"coordinator did not answer within {timeout:.0f} s; see {self.log_path}")

    def stop(self, *, kill: bool = False) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> CoordinatorProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
