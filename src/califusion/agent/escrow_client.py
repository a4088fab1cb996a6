"""The escrow over HTTP, as one caller: :class:`HttpEscrowAPI` implements ``EscrowAPI``.

It talks to ``/escrow/v1`` wherever the ledger is served (a coordinator that serves the ledger,
or ``califusion ledger serve``), signing every request like :class:`HttpLedgerAPI` does, so the
escrow knows the caller from its key. Statements are signed by the publisher before they are
sent (``sign_statement``); the escrow checks that signature, not who relayed them.

Reads are retried on transport errors. ``register_terms`` and ``submit_statement`` are
idempotent on the escrow's side (the same statement again is accepted), so they are retried too;
``collect_stake`` is not (a lost reply could hide a collected stake) — calling it again is safe
anyway: a trainer staked already gets its existing stake's block back.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from califusion.agent.ledger_client import LedgerServiceClient
from califusion.ledger.escrow_routes import PREFIX
from califusion.ledger.escrow_shapes import (
    BlockIndexShape,
    CollectStakeShape,
    SignedStatementShape,
    StatusShape,
    TermsShape,
    parse_reply,
)
from califusion.ledger.escrow_store import EscrowStatus
from califusion.ledger.escrow_terms import EscrowTerms, SignedStatement

__all__ = ["HttpEscrowAPI"]

_ATTEMPTS = 4


class HttpEscrowAPI(LedgerServiceClient):
    """``EscrowAPI`` for ``identity`` against the escrow at ``base_url`` (no ``/escrow/v1``)."""

    _service = "the escrow"

    def _call(
        self,
        method: str,
        name: str,
        payload: BaseModel | None = None,
        *,
        attempts: int = 1,
        **query: str,
    ) -> Any:
        body = payload.model_dump_json().encode() if payload is not None else b""
        response = self._signed(
            method, f"{PREFIX}/{name}", body=body, params=query or None, attempts=attempts
        )
        return json.loads(response.content)

    def status(self, job_id: str) -> EscrowStatus:
        data = self._call("GET", "status", attempts=_ATTEMPTS, job_id=job_id)
        return parse_reply(StatusShape, data).to_status()

    def register_terms(self, signed: SignedStatement) -> EscrowTerms:
        shape = SignedStatementShape.of(signed)
        data = self._call("POST", "register_terms", shape, attempts=_ATTEMPTS)
        return parse_reply(TermsShape, data).to_terms()

    def submit_statement(self, signed: SignedStatement) -> EscrowStatus:
        shape = SignedStatementShape.of(signed)
        data = self._call("POST", "submit_statement", shape, attempts=_ATTEMPTS)
        return parse_reply(StatusShape, data).to_status()

    def collect_stake(self, job_id: str, from_subaccount: bytes | None = None) -> int:
        arg = CollectStakeShape(
            job_id=job_id,
            from_subaccount=from_subaccount.hex() if from_subaccount is not None else None,
        )
        data = self._call("POST", "collect_stake", arg)
        return int(parse_reply(BlockIndexShape, data).block_index)
