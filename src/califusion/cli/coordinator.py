"""`califusion coordinator serve`: run the coordinator service."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from califusion.cli.common import califusion_home

app = typer.Typer(help="Run the coordinator service.", no_args_is_help=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8470,
    database_url: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL (default SQLite under $CALIFUSION_HOME).")
    ] = None,
    blob_dir: Annotated[Path | None, typer.Option(help="Folder for encrypted blobs.")] = None,
) -> None:
    """Serve the coordinator API (OpenAPI docs at /docs)."""
    # imported here: the service stack is heavy and every other command starts faster without it
    from califusion.coordinator import serve as serve_coordinator  # noqa: PLC0415
    from califusion.core.settings import CoordinatorSettings  # noqa: PLC0415

    home = califusion_home() / "coordinator"
    home.mkdir(parents=True, exist_ok=True)
    settings = CoordinatorSettings(
        home=home,  # its key (coordinator-identity.pem) is made here on first start
        host=host,
        port=port,
        database_url=database_url or f"sqlite:///{home / 'coordinator.db'}",
        blob_dir=blob_dir or home / "blobs",
    )
    serve_coordinator(settings)
