"""Settings types, read from the environment (prefix ``CALIFUSION_``) or built in code.

Only plain types live here: the composition root (cli, ``python -m califusion.coordinator``)
builds a settings object once and passes it down. Nothing in the project reads the environment
anywhere else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


def default_home() -> Path:
    """Where CaliFusion keeps its files when nothing else is configured."""
    return Path.home() / ".califusion"


def _default_database_url(data: dict[str, Any]) -> str:
    return f"sqlite:///{Path(data['home']) / 'coordinator.db'}"


def _default_blob_dir(data: dict[str, Any]) -> Path:
    return Path(data["home"]) / "blobs"


def _default_identity_file(data: dict[str, Any]) -> Path:
    return Path(data["home"]) / "coordinator-identity.pem"


class CoordinatorSettings(BaseSettings):
    """How a coordinator process runs. ``CALIFUSION_DATABASE_URL`` etc. override the defaults."""

    model_config = SettingsConfigDict(env_prefix="CALIFUSION_", extra="forbid", frozen=True)

    home: Path = Field(default_factory=default_home, description="default folder for files")
    database_url: str = Field(
        default_factory=_default_database_url,
        description="sqlite:///PATH (default <home>/coordinator.db) or postgresql+psycopg://...",
    )
    blob_dir: Path = Field(default_factory=_default_blob_dir, description="local blob store")
    blob_url: str | None = Field(
        default=None,
        description="s3://BUCKET/PREFIX?endpoint=URL&region=R: blobs in S3 (wins over blob_dir)",
    )
    s3_access_key: str | None = Field(default=None, description="S3 access key id (blob_url)")
    s3_secret_key: SecretStr | None = Field(default=None, description="S3 secret (blob_url)")
    identity_file: Path = Field(
        default_factory=_default_identity_file,
        description="the coordinator's Ed25519 key (signs round transcripts); made on first start",
    )
    identity_passphrase: SecretStr | None = Field(
        default=None, description="encrypts identity_file at rest when set"
    )
    max_blob_bytes: int = Field(default=256 * MIB, ge=1, description="largest blob accepted")
    max_request_bytes: int = Field(default=4 * MIB, ge=1, description="largest JSON body")
    max_wrapped_key_bytes: int = Field(default=4096, ge=1, description="largest wrapped job key")
    request_window_s: float = Field(default=60.0, gt=0, description="accepted clock skew")
    tick_interval_s: float = Field(default=1.0, gt=0, description="deadline check period")
    host: str = "127.0.0.1"
    port: int = Field(default=8470, ge=0, le=65535)
    ledger_database_url: str | None = Field(
        default=None,
        description="the embedded ledger's database: when set, a job opens only with its reward "
        "pool in escrow and a trainer joins only with its stake there",
    )
    ledger_operator_keystore: Path | None = Field(
        default=None,
        description="the ledger operator's keystore (its account mints; its key signs tip "
        "certificates): with ledger_database_url, the ledger is served at /ledger/v1",
    )
    ledger_operator_passphrase: SecretStr | None = Field(
        default=None, description="unlocks ledger_operator_keystore"
    )
    escrow_interval_s: float = Field(
        default=1.0, gt=0, description="how often the escrow executor makes the payments due"
    )
    log_level: str = "info"
