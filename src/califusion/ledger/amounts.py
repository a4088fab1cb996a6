"""Token amounts as people write them (``1.5``) and as the ledger counts them (``150000000``).

Integer and string arithmetic only — never a float: ``1.5`` with 8 decimals is
``1 * 10**8 + 50000000``. Parsing refuses what is not a plain decimal number (signs, exponents,
digit separators, other scripts' digits) and more decimals than the token has, each with a
message that says what to write instead. :func:`describe_error` turns a ledger refusal into one
sentence with amounts in tokens; :func:`memo_text` shows a memo.
"""

from __future__ import annotations

import re
from typing import Any

from califusion.core.errors import InvalidInput
from califusion.ledger.types import (
    AllowanceChanged,
    BadBurn,
    BadFee,
    CreatedInFuture,
    Duplicate,
    Expired,
    GenericError,
    InsufficientAllowance,
    InsufficientFunds,
    TemporarilyUnavailable,
    TooOld,
)

_AMOUNT = re.compile(r"(?P<whole>[0-9]+)(?:\.(?P<fraction>[0-9]+))?")


def parse_amount(text: str, *, decimals: int, symbol: str) -> int:
    """``"1.5"`` → ``150000000`` (8 decimals); :class:`InvalidInput` for anything else."""
    written = text.strip()
    if written.startswith("-"):
        raise InvalidInput(f"amount {text!r} is negative; amounts are 0 or more {symbol}")
    match = _AMOUNT.fullmatch(written)
    if match is None:
        raise InvalidInput(
            f"amount {text!r} is not a number of {symbol}: write digits with an optional "
            f"decimal point, e.g. 1.5"
        )
    fraction: str = match.group("fraction") or ""
    if len(fraction) > decimals:
        raise InvalidInput(
            f"{symbol} has {decimals} decimals; {text!r} has {len(fraction)} "
            f"(the smallest amount is {format_amount(1, decimals=decimals)} {symbol})"
        )
    scale: int = 10**decimals
    return int(match.group("whole")) * scale + int(fraction.ljust(decimals, "0") or "0")


def format_amount(units: int, *, decimals: int, symbol: str | None = None) -> str:
    """``150000000`` → ``"1.5"`` (or ``"1.5 CFT"``): exact, trailing zeros dropped, one kept."""
    sign = "-" if units < 0 else ""
    whole, fraction = divmod(abs(units), 10**decimals)
    digits = f"{fraction:0{decimals}d}".rstrip("0") if decimals else ""
    text = f"{sign}{whole}.{digits or '0'}" if decimals else f"{sign}{whole}"
    return f"{text} {symbol}" if symbol else text


def describe_error(error: Any, *, decimals: int, symbol: str) -> str:
    """One sentence for a ledger ``Err`` case, amounts in tokens."""

    def tokens(units: int) -> str:
        return format_amount(units, decimals=decimals, symbol=symbol)

    match error:
        case InsufficientFunds(balance):
            return f"insufficient funds: the balance is {tokens(balance)}"
        case InsufficientAllowance(allowance):
            return f"insufficient allowance: {tokens(allowance)} is approved"
        case BadFee(expected_fee):
            return f"wrong fee: the ledger charges {tokens(expected_fee)}"
        case BadBurn(min_burn_amount):
            return f"burn too small: burn at least {tokens(min_burn_amount)}"
        case AllowanceChanged(current_allowance):
            return f"the allowance changed: it is now {tokens(current_allowance)}"
        case Duplicate(duplicate_of):
            return f"already done: this exact call is block {duplicate_of}"
        case TooOld():
            return "too old: created_at_time is outside the ledger's 24-hour window"
        case CreatedInFuture(ledger_time):
            return f"created in the future: the ledger's time is {ledger_time} ns; check the clock"
        case Expired(ledger_time):
            return f"expired: expires_at is before the ledger's time ({ledger_time} ns)"
        case TemporarilyUnavailable():
            return "the ledger is temporarily unavailable; retry later"
        case GenericError(error_code, message):
            return f"ledger error {error_code}: {message}"
    return f"refused by the ledger: {error!r}"


def memo_text(memo: bytes | None) -> str:
    """A memo as a person reads it: its text if it is printable UTF-8, else hex."""
    if memo is None:
        return ""
    try:
        text = memo.decode("utf-8")
    except UnicodeDecodeError:
        return memo.hex()
    return text if text.isprintable() else memo.hex()
