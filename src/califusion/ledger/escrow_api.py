"""The escrow as its users see it, whatever process it runs in.

- :class:`EscrowReader` — what anyone may read: a job's :class:`EscrowStatus` (terms, funding,
  stakes, purchases, outcome). The coordinator's admission policy and the agents' checks use it.
- :class:`EscrowAPI` — a reader that can also take a caller's signed statements and collect the
  caller's stake. Statements carry their own signature, so *who relays them* does not matter;
  ``collect_stake`` pulls only from the caller's own account, with the allowance it gave.

:class:`EmbeddedEscrowAPI` binds an in-process :class:`EscrowExecutor` to a caller (like
:class:`~califusion.ledger.api.EmbeddedLedgerAPI`); :func:`open_escrow_reader` reads another
process's ledger database (the coordinator's view of the embedded ledger). An HTTP client can
implement the same protocols when the ledger is served over HTTP.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from sqlalchemy.engine import URL

from califusion.crypto.principal import Principal
from califusion.ledger.escrow_executor import EscrowExecutor
from califusion.ledger.escrow_store import EscrowStatus, EscrowStore
from califusion.ledger.escrow_terms import EscrowTerms, SignedStatement
from califusion.ledger.store import LedgerStore

__all__ = ["EmbeddedEscrowAPI", "EscrowAPI", "EscrowReader", "open_escrow_reader"]


@runtime_checkable
class EscrowReader(Protocol):
    def status(self, job_id: str) -> EscrowStatus:
        """A job's escrow as the ledger shows it now (no terms: ``status.terms is None``)."""
        ...


@runtime_checkable
class EscrowAPI(EscrowReader, Protocol):
    @property
    def caller(self) -> Principal: ...

    def register_terms(self, signed: SignedStatement) -> EscrowTerms:
        """Bind a job to its publisher's signed terms (the first terms bind)."""
        ...

    def submit_statement(self, signed: SignedStatement) -> EscrowStatus:
        """Record a publisher's signed round or close statement."""
        ...

    def collect_stake(self, job_id: str, from_subaccount: bytes | None = None) -> int:
        """Move the caller's stake into the job's escrow (ICRC-2 allowance); its block index."""
        ...


class EmbeddedEscrowAPI:
    """:class:`EscrowAPI` over an in-process executor, calling as ``caller`` (who must have been
    authenticated by whoever builds this object)."""

    __slots__ = ("_caller", "_executor")

    def __init__(self, executor: EscrowExecutor, caller: Principal) -> None:
        self._executor = executor
        self._caller = caller

    @property
    def caller(self) -> Principal:
        return self._caller

    def status(self, job_id: str) -> EscrowStatus:
        return self._executor.status(job_id)

    def register_terms(self, signed: SignedStatement) -> EscrowTerms:
        return self._executor.register_terms(signed)

    def submit_statement(self, signed: SignedStatement) -> EscrowStatus:
        return self._executor.submit_statement(signed)

    def collect_stake(self, job_id: str, from_subaccount: bytes | None = None) -> int:
        return self._executor.collect_stake(self._caller, job_id, from_subaccount)

    def __repr__(self) -> str:
        return f"EmbeddedEscrowAPI(caller={self._caller})"


def open_escrow_reader(ledger_url: str | URL) -> EscrowStore:
    """A reader of the escrow in the ledger database at ``ledger_url`` (another process's)."""
    return EscrowStore(LedgerStore(ledger_url, create=False).engine)
