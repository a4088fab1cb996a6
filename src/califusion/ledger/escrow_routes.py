"""The escrow over HTTP: ``escrow_router(executor, callers)`` → routes under ``/escrow/v1``.

Mounted wherever the ledger is served (``/ledger/v1``): in ``califusion ledger serve`` and in a
coordinator that serves the ledger. Every request is signed like a ledger request
(:mod:`califusion.ledger.http_auth`); the caller is the principal that signed it.

- ``GET  /escrow/v1/status?job_id=…`` — a job's escrow (terms, funding, stakes, purchases,
  outcome): public, any signed caller may read it;
- ``POST /escrow/v1/register_terms`` — a publisher's signed terms; ``submit_statement`` — a
  publisher's signed round or close statement. A statement carries its own signature, checked
  against the job's publisher, so it does not matter who relays it;
- ``POST /escrow/v1/collect_stake`` — pull the *caller's* stake into the job's escrow, from the
  caller's own account (the subaccount is the caller's choice, the owner never is), with the
  ICRC-2 allowance the caller gave the job's escrow account.

Shapes are :mod:`califusion.ledger.escrow_shapes` (amounts as decimal strings). Errors are
problem bodies: 401 a bad request signature or statement signature, 403 a statement not signed
by the publisher, 404 unknown terms, 409 a rule refused (settled job, no allowance, a round out
of order), 422 malformed input.
"""

# No ``from __future__ import annotations``: FastAPI must resolve the route signatures, and they
# name ``Caller``, a dependency alias local to ``escrow_router``.
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from califusion.crypto.principal import Principal
from califusion.ledger.escrow_executor import EscrowExecutor
from califusion.ledger.escrow_ids import MAX_JOB_ID_BYTES
from califusion.ledger.escrow_shapes import (
    BlockIndexShape,
    CollectStakeShape,
    SignedStatementShape,
    StatusShape,
    TermsShape,
)
from califusion.ledger.http_auth import SignedCallers
from califusion.ledger.http_routes import signed_caller

PREFIX = "/escrow/v1"
JobIdQuery = Annotated[
    str, Query(min_length=1, max_length=MAX_JOB_ID_BYTES, pattern=r"^[\x21-\x7e]+$")
]


def escrow_router(
    executor: EscrowExecutor,
    callers: SignedCallers,
    *,
    on_change: Callable[[], None] | None = None,
) -> APIRouter:
    """The escrow's routes, authenticated by ``callers``; ``on_change`` is called after each
    accepted statement or stake (the runner's ``poke``: payments may have fallen due)."""
    Caller = Annotated[Principal, Depends(signed_caller(callers))]  # noqa: N806 - a type alias
    router = APIRouter(prefix=PREFIX, tags=["escrow"])

    def changed() -> None:
        if on_change is not None:
            on_change()

    @router.get("/status")
    def status(_caller: Caller, job_id: JobIdQuery) -> dict[str, Any]:
        """A job's escrow as the ledger shows it now (``terms`` null: none registered)."""
        return StatusShape.of(executor.status(job_id)).model_dump(mode="json")

    @router.post("/register_terms")
    def register_terms(_caller: Caller, signed: SignedStatementShape) -> dict[str, Any]:
        """Bind a job to its publisher's signed terms (the first terms bind; same again: ok)."""
        terms = executor.register_terms(signed.to_signed())
        return TermsShape.of(terms).model_dump(mode="json")

    @router.post("/submit_statement")
    def submit_statement(_caller: Caller, signed: SignedStatementShape) -> dict[str, Any]:
        """Record the publisher's signed round or close statement; the escrow afterwards."""
        after = executor.submit_statement(signed.to_signed())
        changed()
        return StatusShape.of(after).model_dump(mode="json")

    @router.post("/collect_stake")
    def collect_stake(caller: Caller, arg: CollectStakeShape) -> dict[str, Any]:
        """Move the caller's stake into the job's escrow (the caller approved it first)."""
        block = executor.collect_stake(caller, arg.job_id, arg.subaccount())
        changed()
        return BlockIndexShape(block_index=str(block)).model_dump(mode="json")

    return router


__all__ = ["PREFIX", "escrow_router"]
