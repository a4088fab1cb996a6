"""The ledger over HTTP: ``ledger_router(ledger, callers)`` → routes under ``/ledger/v1``.

One route per canister method, named like it (``POST /ledger/v1/icrc1_transfer``,
``GET /ledger/v1/icrc1_balance_of?account=<ICRC account text>``), with the JSON shapes of
:mod:`califusion.ledger.http_shapes`. Every request is signed (:mod:`califusion.ledger.http_auth`)
and the caller of an update call is the signer — never a field of the body. Balances, blocks and
allowances are public, so any signer may read any account.

Rule violations are ``200`` with ``{"Err": ...}``, as the canister replies; what the reference
traps on (a memo too long, a self-approval) and malformed input are ``422`` problems, a bad
signature ``401``; the app's problem handlers write those bodies. Two extras that are not ICRC
methods: ``account_blocks`` (an account's history, like the ICRC index canister) and ``verify``
(recompute everything from the blocks).
"""

# No ``from __future__ import annotations``: FastAPI must resolve the route signatures, and they
# name ``Caller``, a dependency alias local to ``ledger_router``.
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, Depends, Query, Request

from califusion.crypto.principal import Account, Principal
from califusion.ledger.http_auth import SignedCallers
from califusion.ledger.http_shapes import (
    AccountShape,
    AllowanceShape,
    ApproveArgsShape,
    TipCertificateShape,
    TransferArgShape,
    TransferFromArgsShape,
    blocks_to_json,
    dump,
    get_blocks_to_json,
    metadata_to_json,
    result_to_json,
)
from califusion.ledger.service import MAX_BLOCKS_PER_REQUEST, Ledger
from califusion.ledger.types import AllowanceArgs
from califusion.ledger.verify import verify_store

PREFIX = "/ledger/v1"
AccountText = Annotated[str, Query(min_length=1, max_length=200, description="ICRC-1 account text")]
Index = Annotated[int, Query(ge=0, le=2**63 - 1)]
Count = Annotated[int, Query(ge=0, le=MAX_BLOCKS_PER_REQUEST)]


def _signed_path(request: Request) -> str:
    """The path as the client signed it: the raw request-line path and its query string."""
    raw = request.scope.get("raw_path") or request.scope["path"].encode()
    path = bytes(raw).decode("latin-1")
    query = bytes(request.scope.get("query_string", b"")).decode("latin-1")
    return f"{path}?{query}" if query else path


def signed_caller(callers: SignedCallers) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the principal that signed the request (or a 401 problem)."""

    async def caller(request: Request) -> Principal:
        body = await request.body()
        args = (request.headers, request.method, _signed_path(request), body)
        if not callers.blocking:
            return callers.authenticate(*args)
        return await anyio.to_thread.run_sync(callers.authenticate, *args)

    return caller


def ledger_router(ledger: Ledger, callers: SignedCallers) -> APIRouter:
    """The ledger's routes, authenticated by ``callers``."""
    Caller = Annotated[Principal, Depends(signed_caller(callers))]  # noqa: N806 - a type alias
    router = APIRouter(prefix=PREFIX, tags=["ledger"])

    # --- ICRC-1 -------------------------------------------------------------------------------

    @router.get("/icrc1_name")
    def icrc1_name(_caller: Caller) -> str:
        return ledger.icrc1_name()

    @router.get("/icrc1_symbol")
    def icrc1_symbol(_caller: Caller) -> str:
        return ledger.icrc1_symbol()

    @router.get("/icrc1_decimals")
    def icrc1_decimals(_caller: Caller) -> int:
        return ledger.icrc1_decimals()

    @router.get("/icrc1_fee")
    def icrc1_fee(_caller: Caller) -> str:
        return str(ledger.icrc1_fee())

    @router.get("/icrc1_metadata")
    def icrc1_metadata(_caller: Caller) -> list[list[Any]]:
        return metadata_to_json(ledger.icrc1_metadata())

    @router.get("/icrc1_total_supply")
    def icrc1_total_supply(_caller: Caller) -> str:
        return str(ledger.icrc1_total_supply())

    @router.get("/icrc1_minting_account")
    def icrc1_minting_account(_caller: Caller) -> dict[str, Any] | None:
        account = ledger.icrc1_minting_account()
        return dump(AccountShape.of(account)) if account is not None else None

    @router.get("/icrc1_supported_standards")
    def icrc1_supported_standards(_caller: Caller) -> list[dict[str, str]]:
        return [{"name": s.name, "url": s.url} for s in ledger.icrc1_supported_standards()]

    @router.get("/icrc1_balance_of")
    def icrc1_balance_of(_caller: Caller, account: AccountText) -> str:
        return str(ledger.icrc1_balance_of(Account.from_text(account)))

    @router.post("/icrc1_transfer")
    def icrc1_transfer(caller: Caller, arg: TransferArgShape) -> dict[str, Any]:
        return result_to_json(ledger.icrc1_transfer(caller, arg.to_arg()))

    # --- ICRC-2 -------------------------------------------------------------------------------

    @router.post("/icrc2_approve")
    def icrc2_approve(caller: Caller, arg: ApproveArgsShape) -> dict[str, Any]:
        return result_to_json(ledger.icrc2_approve(caller, arg.to_arg()))

    @router.get("/icrc2_allowance")
    def icrc2_allowance(_caller: Caller, account: AccountText, spender: AccountText) -> Any:
        args = AllowanceArgs(Account.from_text(account), Account.from_text(spender))
        return dump(AllowanceShape.of(ledger.icrc2_allowance(args)))

    @router.post("/icrc2_transfer_from")
    def icrc2_transfer_from(caller: Caller, arg: TransferFromArgsShape) -> dict[str, Any]:
        return result_to_json(ledger.icrc2_transfer_from(caller, arg.to_arg()))

    # --- ICRC-3 -------------------------------------------------------------------------------

    @router.get("/icrc3_get_blocks")
    def icrc3_get_blocks(_caller: Caller, start: Index, length: Count) -> dict[str, Any]:
        return get_blocks_to_json(ledger.icrc3_get_blocks(start, length))

    @router.get("/icrc3_get_tip_certificate")
    def icrc3_get_tip_certificate(_caller: Caller) -> dict[str, Any] | None:
        certificate = ledger.icrc3_get_tip_certificate()
        return dump(TipCertificateShape.of(certificate)) if certificate is not None else None

    @router.get("/icrc3_get_archives")
    def icrc3_get_archives(_caller: Caller) -> list[Any]:
        return []

    @router.get("/icrc3_supported_block_types")
    def icrc3_supported_block_types(_caller: Caller) -> list[dict[str, str]]:
        types = ledger.icrc3_supported_block_types()
        return [{"block_type": t.block_type, "url": t.url} for t in types]

    # --- extras -------------------------------------------------------------------------------

    @router.get("/account_blocks")
    def account_blocks(
        _caller: Caller,
        account: AccountText,
        start: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
        max_results: Count = 100,
    ) -> dict[str, Any]:
        """Blocks touching ``account``, newest first, with an index below ``start``."""
        target = Account.from_text(account)
        blocks = ledger.account_blocks(target, start=start, max_results=max_results)
        return {"blocks": blocks_to_json(blocks)}

    @router.get("/verify")
    def verify(_caller: Caller) -> dict[str, Any]:
        """Re-read every block, check the chain, recompute balances and supply (slow: all of
        the log is read)."""
        report = verify_store(ledger.store)
        return {
            "ok": report.ok,
            "blocks_checked": str(report.blocks_checked),
            "total_supply": str(report.total_supply),
            "tip_hash": report.tip_hash.hex() if report.tip_hash is not None else None,
            "discrepancies": [
                {
                    "subject": d.subject,
                    "expected": d.expected,
                    "found": d.found,
                    "block_index": str(d.block_index) if d.block_index is not None else None,
                }
                for d in report.discrepancies
            ],
        }

    return router
