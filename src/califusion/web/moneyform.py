"""The wallet's transfer and approve forms → ledger arguments, with a message beside each field.

Amounts are parsed exactly (:func:`califusion.ledger.amounts.parse_amount`: integers only, no
float), accounts as ICRC-1 account text (``principal[-checksum.subaccount]``). What the ledger
would refuse for certain (more than the balance, the fee included) is said here, before the
call; what only the ledger knows comes back as its ``Err`` in one sentence.

Each form carries ``created_at`` (nanoseconds, set when the form was drawn): it becomes the
call's ``created_at_time``, so the same form sent twice is a ``Duplicate`` of the first block,
not a second payment.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from starlette.datastructures import FormData

from califusion.core.errors import InvalidInput
from califusion.crypto.principal import Account
from califusion.ledger.amounts import parse_amount
from califusion.ledger.types import ApproveArgs, TransferArg
from califusion.web.money import TokenInfo
from califusion.web.present import amount

__all__ = [
    "APPROVE_LABELS",
    "TRANSFER_LABELS",
    "MoneyForm",
    "blank_form",
    "parse_approve",
    "parse_transfer",
]

MAX_MEMO_BYTES = 32
MAX_EXPIRY_HOURS = 24 * 365
# The ledger refuses a created_at_time older than its window (24 h); a form that old gets a
# fresh time instead (it cannot be the same click sent twice).
CREATED_AT_WINDOW_NS = 12 * 3600 * 10**9

TRANSFER_LABELS = {
    "from_subaccount": "From",
    "to": "To account",
    "amount": "Amount",
    "memo": "Memo (optional)",
}
APPROVE_LABELS = {
    "from_subaccount": "From",
    "spender": "Spender account",
    "amount": "Allowance",
    "expires_hours": "Expires after (hours, optional)",
}


@dataclass
class MoneyForm:
    """What was typed, the problems by field, and the ledger call once it is valid."""

    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)
    transfer: TransferArg | None = None
    approve: ApproveArgs | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


def now_ns() -> int:
    return time.time_ns()


def blank_form(names: dict[str, str]) -> MoneyForm:
    values = dict.fromkeys(names, "")
    values["created_at"] = str(now_ns())
    return MoneyForm(values)


def _values(data: FormData, names: dict[str, str]) -> dict[str, str]:
    values = {name: str(data.get(name, "")).strip()[:400] for name in names}
    values["created_at"] = str(data.get("created_at", "")).strip()[:20]
    return values


def _created_at(text: str) -> int:
    now = now_ns()
    if text.isdigit() and now - CREATED_AT_WINDOW_NS < int(text) <= now:
        return int(text)
    return now


def _account(form: MoneyForm, name: str) -> Account | None:
    text = form.values[name]
    if not text:
        form.errors[name] = "enter an ICRC account, e.g. a principal such as abcde-…-cai"
        return None
    try:
        return Account.from_text(text)
    except (InvalidInput, ValueError) as exc:
        form.errors[name] = f"not an ICRC account: {exc}"
        return None


def _amount(form: MoneyForm, token: TokenInfo) -> int | None:
    text = form.values["amount"]
    if not text:
        form.errors["amount"] = f"enter an amount of {token.symbol}, e.g. 1.5"
        return None
    try:
        units = parse_amount(text, decimals=token.decimals, symbol=token.symbol)
    except InvalidInput as exc:
        form.errors["amount"] = str(exc)
        return None
    return units


def _subaccount(form: MoneyForm, mine: list[Account]) -> bytes | None:
    text = form.values["from_subaccount"]
    for account in mine:
        if (account.subaccount or b"").hex() == text or (not text and account.subaccount is None):
            return account.subaccount
    form.errors["from_subaccount"] = "choose one of your accounts"
    return None


def _over_balance(form: MoneyForm, spend: int, balance: int, token: TokenInfo, what: str) -> None:
    if spend > balance:
        form.errors["amount"] = (
            f"{what} is {amount(spend, token.decimals, token.symbol)} with the fee, more than "
            f"your balance of {amount(balance, token.decimals, token.symbol)}"
        )


def parse_transfer(
    data: FormData, token: TokenInfo, mine: list[Account], balances: dict[Account, int]
) -> MoneyForm:
    """The transfer form; ``balances`` of ``mine`` decide whether the amount is affordable."""
    form = MoneyForm(_values(data, TRANSFER_LABELS))
    subaccount = _subaccount(form, mine)
    to = _account(form, "to")
    units = _amount(form, token)
    if units == 0:
        form.errors["amount"] = "enter more than 0"
    memo = form.values["memo"].encode()
    if len(memo) > MAX_MEMO_BYTES:
        form.errors["memo"] = f"at most {MAX_MEMO_BYTES} bytes; this is {len(memo)}"
    if units and "from_subaccount" not in form.errors:
        source = Account(mine[0].owner, subaccount)
        _over_balance(form, units + token.fee, balances.get(source, 0), token, "the transfer")
    if (
        to is not None
        and "from_subaccount" not in form.errors
        and to == Account(mine[0].owner, subaccount)
    ):
        form.errors["to"] = "that is the account you send from; choose another"
    if form.ok and to is not None and units is not None:
        form.transfer = TransferArg(
            to=to,
            amount=units,
            from_subaccount=subaccount,
            fee=token.fee,
            memo=memo or None,
            created_at_time=_created_at(form.values["created_at"]),
        )
    return form


def parse_approve(
    data: FormData, token: TokenInfo, mine: list[Account], balances: dict[Account, int]
) -> MoneyForm:
    """The approve form: let a spender move up to an allowance from one of my accounts."""
    form = MoneyForm(_values(data, APPROVE_LABELS))
    subaccount = _subaccount(form, mine)
    spender = _account(form, "spender")
    units = _amount(form, token)
    expires_at: int | None = None
    hours = form.values["expires_hours"]
    if hours:
        if not hours.isdigit() or not 1 <= int(hours) <= MAX_EXPIRY_HOURS:
            form.errors["expires_hours"] = (
                f"a whole number of hours from 1 to {MAX_EXPIRY_HOURS}, or empty for no expiry"
            )
        else:
            expires_at = now_ns() + int(hours) * 3600 * 10**9
    if units is not None and "from_subaccount" not in form.errors:
        source = Account(mine[0].owner, subaccount)
        balance = balances.get(source, 0)
        if token.fee > balance:
            _over_balance(form, token.fee, balance, token, "approving")
    if spender is not None and spender.owner == mine[0].owner:
        form.errors["spender"] = "you cannot approve yourself; name another principal"
    if form.ok and spender is not None and units is not None:
        form.approve = ApproveArgs(
            spender=spender,
            amount=units,
            from_subaccount=subaccount,
            expires_at=expires_at,
            fee=token.fee,
            created_at_time=_created_at(form.values["created_at"]),
        )
    return form
