"""How values read on a page: token amounts, principals, times, chart series."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Protocol

from califusion.crypto.principal import Account
from califusion.ml.spec import Column, DataSchema
from califusion.protocol import JobInfo, MemberState, RoundInfo, RoundState

__all__ = [
    "ChartData",
    "SchemaRow",
    "account_text",
    "amount",
    "chart_data",
    "joined_count",
    "parse_amount",
    "schema_rows",
    "short_hex",
    "short_principal",
    "timestamp",
    "tokens",
]

ChartData = dict[str, list[float | None]]


def amount(units: int | None, decimals: int, symbol: str) -> str:
    """``1_000_000_000`` with 8 decimals → ``"10 CFT"``; trailing zeros dropped."""
    if units is None:
        return "—"
    value = Decimal(units).scaleb(-decimals)
    text = f"{value:,.{decimals}f}".rstrip("0").rstrip(".")
    return f"{text} {symbol}"


class _Token(Protocol):
    symbol: str
    decimals: int


def tokens(units: int | None, token: _Token) -> str:
    """An amount in the ledger's own unit: ``{{ units|tokens(token) }}``."""
    return amount(units, token.decimals, token.symbol)


def account_text(account: Account | None) -> str:
    """ICRC-1 account text (``principal`` or ``principal-checksum.subaccount``), or a dash."""
    return account.to_text() if account is not None else "—"


def short_hex(text: str, keep: int = 8) -> str:
    """``0123456789abcdef…`` → ``01234567…89abcdef``: enough to compare hashes by eye."""
    return text if len(text) <= 2 * keep + 1 else f"{text[:keep]}…{text[-keep:]}"


def parse_amount(text: str, decimals: int) -> int:
    """``"10.5"`` → smallest units; ValueError with a message a person can act on."""
    cleaned = text.strip().replace(",", "").replace("_", "")
    if not cleaned:
        return 0
    try:
        value = Decimal(cleaned)
    except InvalidOperation as exc:
        raise ValueError("enter an amount such as 10 or 0.5") from exc
    if not value.is_finite() or value < 0:
        raise ValueError("enter an amount of zero or more")
    units = value.scaleb(decimals)
    if units != units.to_integral_value():
        raise ValueError(f"at most {decimals} decimal places")
    if units > 2**63 - 1:
        raise ValueError("amount too large")
    return int(units)


def short_principal(principal: str) -> str:
    """The first and last groups of a principal: ``abcde…xyz-cai``."""
    groups = principal.split("-")
    if len(groups) <= 3:
        return principal
    return f"{groups[0]}…{groups[-2]}-{groups[-1]}"


def timestamp(epoch: float | None) -> str:
    """Local time, with the date only when it is not today."""
    if epoch is None or not math.isfinite(epoch):
        return "—"
    moment = datetime.fromtimestamp(epoch)
    if moment.date() == datetime.fromtimestamp(time.time()).date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M")


def joined_count(job: JobInfo) -> int:
    """Trainers who joined and were not rejected."""
    return sum(1 for m in job.members if m.state != MemberState.REJECTED)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def chart_data(rounds: list[RoundInfo]) -> ChartData:
    """Per closed round: validation loss, training loss and accuracy (None where unknown)."""
    closed = [r for r in rounds if r.state == RoundState.CLOSED and r.metrics is not None]
    closed.sort(key=lambda r: r.number)
    data: ChartData = {"round": [], "loss": [], "train_loss": [], "accuracy": []}
    for rnd in closed:
        metrics = rnd.metrics
        assert metrics is not None
        data["round"].append(float(rnd.number))
        data["loss"].append(_finite(metrics.loss))
        data["train_loss"].append(_finite(metrics.train_loss))
        data["accuracy"].append(_finite(metrics.accuracy))
    return data


@dataclass(frozen=True)
class SchemaRow:
    """One line of a schema table: a column, or a run of alike columns (``x0 … x59``)."""

    names: str
    count: int
    dtype: str
    allowed: str


def _allowed(column: Column) -> str:
    if column.min is None and column.max is None:
        return "any finite number"
    low = "−∞" if column.min is None else f"{column.min:g}"
    high = "∞" if column.max is None else f"{column.max:g}"
    return f"{low} … {high}"


def schema_rows(schema: DataSchema) -> list[SchemaRow]:
    """The feature columns, runs of 3 or more alike neighbours folded into one row."""
    rows: list[SchemaRow] = []
    run: list[Column] = []

    def flush() -> None:
        if len(run) >= 3:
            names = f"{run[0].name} … {run[-1].name}"
            rows.append(SchemaRow(names, len(run), run[0].dtype, _allowed(run[0])))
        else:
            rows.extend(SchemaRow(c.name, 1, c.dtype, _allowed(c)) for c in run)
        run.clear()

    for column in schema.features:
        if run and (column.dtype, column.min, column.max) != (run[0].dtype, run[0].min, run[0].max):
            flush()
        run.append(column)
    flush()
    return rows
