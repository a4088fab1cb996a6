"""The wallet: my balances in ICRC account text, transfer and approve forms, my blocks."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from califusion.core.errors import CaliFusionError, InvalidInput
from califusion.crypto.principal import Account
from califusion.ledger.amounts import describe_error
from califusion.ledger.types import Duplicate, Err, Ok
from califusion.web.money import BlockRow, LedgerDesk, TokenInfo
from califusion.web.moneyform import (
    APPROVE_LABELS,
    TRANSFER_LABELS,
    MoneyForm,
    blank_form,
    parse_approve,
    parse_transfer,
)
from califusion.web.render import agent_of, renderer_of
from califusion.web.routes._common import Form

__all__ = ["router"]

router = APIRouter()

HISTORY = 50
AccountQuery = Annotated[str, Query(max_length=200)]
BlockQuery = Annotated[int | None, Query(ge=0, le=2**63 - 1)]


def _selected(desk: LedgerDesk, text: str) -> Account:
    if not text:
        return desk.account
    try:
        account = Account.from_text(text)
    except (InvalidInput, ValueError) as exc:
        raise InvalidInput(f"not an ICRC account: {exc}") from exc
    if account.owner != desk.account.owner:
        raise InvalidInput("the wallet shows your own accounts; search others in the explorer")
    return account


def _wallet_context(
    request: Request,
    *,
    account_text: str = "",
    before: int | None = None,
    transfer: MoneyForm | None = None,
    approve: MoneyForm | None = None,
    general: str | None = None,
) -> dict[str, Any]:
    desk = agent_of(request).money
    context: dict[str, Any] = {
        "transfer": transfer or blank_form(TRANSFER_LABELS),
        "approve": approve or blank_form(APPROVE_LABELS),
        "transfer_labels": TRANSFER_LABELS,
        "approve_labels": APPROVE_LABELS,
        "general": general,
        "ledger_url": desk.ledger_url,
        "ledger_error": None,
        "accounts": [],
        "history": [],
        "selected": desk.account,
        "before": before,
        "token": desk.display_token(),
    }
    selected = _selected(desk, account_text)
    context["selected"] = selected
    try:
        token = desk.token()
        accounts = desk.my_accounts()
        if selected not in accounts:
            accounts.append(selected)
        context["token"] = token
        context["accounts"] = [(a, desk.balance(a)) for a in accounts]
        context["history"] = desk.history(selected, before=before, limit=HISTORY)
    except CaliFusionError as exc:
        context["ledger_error"] = str(exc)
    return context


@router.get("/wallet", response_class=HTMLResponse)
def wallet_page(
    request: Request,
    account: AccountQuery = "",
    before: BlockQuery = None,
    done: BlockQuery = None,
) -> Response:
    context = _wallet_context(request, account_text=account, before=before)
    return renderer_of(request).page(request, "wallet.html", done=done, **context)


def _balances(desk: LedgerDesk) -> tuple[TokenInfo, list[Account], dict[Account, int]]:
    token = desk.token()
    mine = desk.my_accounts()
    return token, mine, {a: desk.balance(a) for a in mine}


def _refused(request: Request, status: int = 422, **forms: Any) -> Response:
    context = _wallet_context(request, **forms)
    return renderer_of(request).page(
        request, "wallet.html", status_code=status, done=None, **context
    )


def _outcome(request: Request, result: object, token: TokenInfo, **form: Any) -> Response:
    match result:
        case Ok(block_index) | Err(Duplicate(block_index)):
            return RedirectResponse(f"/wallet?done={block_index}", status_code=303)
        case Err(error):
            message = describe_error(error, decimals=token.decimals, symbol=token.symbol)
            return _refused(request, general=f"The ledger refused: {message}.", **form)
    raise InvalidInput("unexpected reply from the ledger")


@router.post("/wallet/transfer", response_class=HTMLResponse)
def transfer(request: Request, data: Form) -> Response:
    """Send tokens from one of my accounts; the form again with messages if anything is off."""
    desk = agent_of(request).money
    token, mine, balances = _balances(desk)
    form = parse_transfer(data, token, mine, balances)
    if form.transfer is None:
        return _refused(request, transfer=form)
    return _outcome(request, desk.api.icrc1_transfer(form.transfer), token, transfer=form)


@router.post("/wallet/approve", response_class=HTMLResponse)
def approve(request: Request, data: Form) -> Response:
    """Let another principal spend up to an allowance from one of my accounts (ICRC-2)."""
    desk = agent_of(request).money
    token, mine, balances = _balances(desk)
    form = parse_approve(data, token, mine, balances)
    if form.approve is None:
        return _refused(request, approve=form)
    return _outcome(request, desk.api.icrc2_approve(form.approve), token, approve=form)


def row_direction(row: BlockRow, account: Account) -> str:
    """in / out / approve / fee, as the history's row reads for ``account``."""
    if row.op == "approve":
        return "approve"
    if row.to == account and row.from_ == account:
        return "self"
    return "in" if row.to == account else "out"
