"""The local agent behind the dashboard: one identity, its keys, and its background work.

The browser never holds a key. Every request to the coordinator is signed here with the
keystore unlocked once when ``califusion ui`` started; the publisher loop and the trainer threads
run in this process for as long as the dashboard does.
"""

from __future__ import annotations

import logging
import threading

from califusion.agent.client import CoordinatorClient
from califusion.core.errors import CaliFusionError
from califusion.crypto.identity import Identity
from califusion.web.buying import BuyerDesk
from califusion.web.config import DashboardConfig
from califusion.web.escrow import EscrowLink
from califusion.web.money import LedgerDesk
from califusion.web.publishing import PublisherDesk
from califusion.web.training import TrainerDesk
from califusion.web.verification import RoundChecks

__all__ = ["LocalAgent"]

log = logging.getLogger(__name__)


class LocalAgent:
    """What the routes call: a signed coordinator client; the publisher, trainer, ledger desks."""

    def __init__(self, identity: Identity, config: DashboardConfig) -> None:
        self.identity = identity
        self.config = config
        self.client = CoordinatorClient(config.coordinator_url, identity)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.registration_error: str | None = None
        self._names: dict[str, str] = {}
        self.escrow = EscrowLink(identity, config.ledger_base_url)
        self.publisher = PublisherDesk(
            identity,
            config.coordinator_url,
            config.state_dir,
            config.poll_interval_s,
            escrow=self.escrow,
        )
        self.trainer = TrainerDesk(
            identity,
            config.coordinator_url,
            config.state_dir,
            self._stop,
            config.poll_interval_s,
            escrow=self.escrow,
        )
        self.money = LedgerDesk(
            identity,
            config.ledger_base_url,
            config.ledger_public_key,
            default_symbol=config.token_symbol,
            default_decimals=config.token_decimals,
        )
        self.buyer = BuyerDesk(self.client, self.escrow)
        self.checks = RoundChecks(self.client)

    @property
    def principal(self) -> str:
        return self.identity.principal.to_text()

    def display_name(self, principal: str) -> str:
        """The name a principal registered with ("" if none or unknown); names never change."""
        if principal not in self._names:
            try:
                self._names[principal] = self.client.principal(principal).display_name
            except CaliFusionError:
                return ""
        return self._names[principal]

    def start(self) -> None:
        """Register with the coordinator, then serve published jobs and resume joined ones."""
        thread = threading.Thread(target=self._background, name="local-agent", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _background(self) -> None:
        delay = 1.0
        while not self._stop.is_set():
            try:
                self.client.register(self.config.display_name)
                self.registration_error = None
                break
            except CaliFusionError as exc:
                if self.registration_error != str(exc):  # say it once, not every retry
                    log.warning("cannot register with the coordinator", extra={"why": str(exc)})
                self.registration_error = str(exc)
                self._stop.wait(delay)
                delay = min(delay * 2, 10.0)
        if self._stop.is_set():
            return
        self.trainer.resume()
        self.publisher.serve_forever(self._stop)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the background work and close the connections."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self.trainer.join_threads(timeout)
        self.publisher.close()
        self.money.close()
        self.escrow.close()
        self.client.close()
