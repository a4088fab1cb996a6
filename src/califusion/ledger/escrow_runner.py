"""The escrow executor's heartbeat: a background thread that makes the payments that fall due.

Payments fall due when a statement settles a job, when a deposit arrives after settlement (a
purchase, a late stake) and when a deadline passes; the thread calls
:meth:`EscrowExecutor.run_due` every ``interval_s`` seconds, and at once after :meth:`poke`
(the HTTP routes poke it after each statement or stake). The exactly-once rules are the
executor's (memo + deterministic ``created_at_time``); this thread only decides *when*. A
failed pass is logged and retried on the next beat, so a database hiccup delays payments but
never stops them; :meth:`stop` lets a pass in progress finish, then joins the thread.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from califusion.ledger.escrow_executor import EscrowExecutor

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 1.0


class EscrowRunner:
    """Runs ``executor.run_due()`` periodically in one daemon thread while started."""

    def __init__(self, executor: EscrowExecutor, *, interval_s: float = DEFAULT_INTERVAL_S) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self._executor = executor
        self._interval_s = interval_s
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0  # completed passes, for tests and logs

    @property
    def executor(self) -> EscrowExecutor:
        return self._executor

    def start(self) -> EscrowRunner:
        if self._thread is not None:
            return self
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="escrow-runner", daemon=True)
        self._thread.start()
        return self

    def poke(self) -> None:
        """Run a pass as soon as possible (something may have fallen due)."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        self._wake.set()
        thread.join(timeout=timeout)
        if thread.is_alive():
            log.warning("escrow runner still busy at shutdown")

    def run_once(self) -> int:
        """One pass: the number of payments made."""
        made = self._executor.run_due()
        self.passes += 1
        if made:
            log.info("escrow payments made", extra={"payments": len(made)})
        return len(made)

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("escrow pass failed; retrying on the next beat")
            self._wake.wait(self._interval_s)
            self._wake.clear()

    def __enter__(self) -> EscrowRunner:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = ["DEFAULT_INTERVAL_S", "EscrowRunner"]
