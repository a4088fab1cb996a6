"""The ledger explorer: the block log page by page, search by account or block, chain check."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from califusion.core.errors import CaliFusionError, InvalidInput
from califusion.crypto.principal import Account
from califusion.web.money import BlockRow
from califusion.web.render import agent_of, renderer_of

__all__ = ["router"]

router = APIRouter()

PAGE_SIZE = 25
SearchQuery = Annotated[str, Query(max_length=200)]
BlockQuery = Annotated[int | None, Query(ge=0, le=2**63 - 1)]


@router.get("/ledger", response_class=HTMLResponse)
def explorer(request: Request, q: SearchQuery = "", before: BlockQuery = None) -> Response:
    """Newest blocks first; ``q`` is a block index or an ICRC account; ``before`` pages back."""
    desk = agent_of(request).money
    query = q.strip()
    context: dict[str, Any] = {
        "q": query,
        "search_error": None,
        "ledger_error": None,
        "rows": [],
        "length": 0,
        "older": None,
        "newer": None,
        "searched": None,
        "check": None,
        "ledger_url": desk.ledger_url,
    }
    status = 200
    try:
        context["token"] = desk.token()
        if query.isdigit():
            context["searched"] = "block"
            length, rows = desk.blocks(int(query), 1)
            context["length"] = length
            context["rows"] = rows
            if not rows:
                context["search_error"] = f"no block {query}: the log has {length} blocks"
                status = 404
        elif query:
            context["searched"] = "account"
            try:
                account = Account.from_text(query)
            except (InvalidInput, ValueError) as exc:
                context["search_error"] = (
                    f"enter a block number or an ICRC account (principal[-checksum.sub]): {exc}"
                )
                status = 422
            else:
                rows = desk.history(account, before=before, limit=PAGE_SIZE)
                context["rows"] = rows
                context["account"] = account
                if len(rows) == PAGE_SIZE:
                    context["older"] = rows[-1].index
        else:
            context.update(_page(request, before))
        context["check"] = desk.check_chain()
    except CaliFusionError as exc:
        context["ledger_error"] = str(exc)
        context["token"] = desk.display_token()
    return renderer_of(request).page(request, "explorer.html", status_code=status, **context)


def _page(request: Request, before: int | None) -> dict[str, Any]:
    desk = agent_of(request).money
    length, _ = desk.blocks(0, 0)
    end = length if before is None else min(before, length)
    start = max(0, end - PAGE_SIZE)
    _, rows = desk.blocks(start, end - start) if end > start else (length, list[BlockRow]())
    return {
        "rows": list(reversed(rows)),
        "length": length,
        "older": start if start > 0 else None,
        "newer": end + PAGE_SIZE if end < length else None,
    }
