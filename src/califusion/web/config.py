"""What one dashboard process needs to know: where the coordinator is, where local state lives."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DashboardConfig"]


@dataclass(frozen=True)
class DashboardConfig:
    """Built once by ``califusion ui`` (the composition root) and passed down.

    ``state_dir`` is the agent's own folder (``$CALIFUSION_HOME/agents/<principal>``): the same
    folder the ``califusion job`` commands use, so a job created on the command line can be run
    from the dashboard and the other way round.
    """

    coordinator_url: str
    state_dir: Path
    port: int
    display_name: str = ""
    # Where ``/ledger/v1`` is served: None means the coordinator serves it.
    ledger_url: str | None = None
    # The ledger operator's Ed25519 public key, trusted to sign tip certificates; None: the
    # explorer verifies the hash chain but says that it could not check the certificate.
    ledger_public_key: bytes | None = None
    poll_interval_s: float = 0.5
    live_refresh_s: float = 2.0
    max_upload_bytes: int = 512 * 1024**2
    # The token's display unit. Until the ledger lands these are the embedded ledger's defaults;
    # then the ledger's icrc1_symbol / icrc1_decimals fill them.
    token_symbol: str = "CFT"  # noqa: S105 - a currency symbol, not a secret
    token_decimals: int = 8

    @property
    def ledger_base_url(self) -> str:
        return self.ledger_url or self.coordinator_url

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def uploads_dir(self) -> Path:
        return self.state_dir / "uploads"
