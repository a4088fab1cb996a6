"""Running a coordinator: ``serve(settings)`` and ``python -m califusion.coordinator``."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn

from califusion.coordinator.admission import AdmissionPolicy
from califusion.coordinator.app import create_app
from califusion.core.settings import CoordinatorSettings


class _KeyValueFormatter(logging.Formatter):
    """``time level logger message key=value ...``: the ``extra`` fields, one per key."""

    _standard = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
        "message",
        "asctime",
        "color_message",
    }

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = {k: v for k, v in vars(record).items() if k not in self._standard}
        if fields:
            line += " " + " ".join(f"{k}={v}" for k, v in sorted(fields.items()))
        return line


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_KeyValueFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger("califusion")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False


def serve(settings: CoordinatorSettings, *, admission: AdmissionPolicy | None = None) -> None:
    """Run one coordinator process in the foreground until interrupted (``admission``: see
    :func:`create_app`; the CLI passes one that reads a standalone ledger's escrow over HTTP)."""
    configure_logging(settings.log_level)
    app = create_app(settings, admission=admission)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=settings.log_level)


def parse_args(argv: Sequence[str] | None = None) -> CoordinatorSettings:
    parser = argparse.ArgumentParser(
        prog="python -m califusion.coordinator",
        description="Run a CaliFusion coordinator. Unset options come from CALIFUSION_* "
        "environment variables, then the defaults.",
    )
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--home", type=Path, help="default folder for the database and blobs")
    parser.add_argument("--database-url", help="sqlite:///PATH or postgresql+psycopg://...")
    parser.add_argument("--blob-dir", type=Path)
    parser.add_argument(
        "--blob-url",
        help="s3://BUCKET/PREFIX?endpoint=URL&region=R (wins over --blob-dir; credentials from "
        "CALIFUSION_S3_ACCESS_KEY and CALIFUSION_S3_SECRET_KEY)",
    )
    parser.add_argument("--ledger-database-url", help="check stakes and funding in this ledger")
    parser.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {k: v for k, v in vars(args).items() if v is not None}
    return CoordinatorSettings(**overrides)


def main(argv: Sequence[str] | None = None) -> None:
    serve(parse_args(argv))
