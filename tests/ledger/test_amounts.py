"""Amounts in tokens ↔ units: exact both ways, and clear errors for what is not an amount."""

from __future__ import annotations

import pytest

from califusion.core.errors import InvalidInput
from califusion.ledger import BadFee, Duplicate, InsufficientFunds, TooOld
from califusion.ledger.amounts import describe_error, format_amount, parse_amount


def cft(text: str) -> int:
    return parse_amount(text, decimals=8, symbol="CFT")


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("1.5", 150_000_000),
        ("0", 0),
        ("0.00000001", 1),
        ("12", 1_200_000_000),
        (" 3.10 ", 310_000_000),
        ("007.5", 750_000_000),
        ("92233720368.54775807", 2**63 - 1),  # exact far past float precision
        ("123456789012345678901234567890", 123456789012345678901234567890 * 10**8),
    ],
)
def test_parse(text: str, units: int) -> None:
    assert cft(text) == units


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0.000000001", "CFT has 8 decimals; '0.000000001' has 9"),
        ("-1", "is negative"),
        ("-0.5", "is negative"),
        ("abc", "is not a number of CFT"),
        ("", "is not a number"),
        ("1e3", "is not a number"),
        ("1,5", "is not a number"),
        ("1_000", "is not a number"),
        ("+1", "is not a number"),
        ("1.", "is not a number"),
        (".5", "is not a number"),
        ("٣", "is not a number"),  # an Arabic-Indic digit: int() would take it
        ("inf", "is not a number"),
        ("NaN", "is not a number"),
    ],
)
def test_parse_refuses(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        cft(text)


def test_zero_decimals() -> None:
    assert parse_amount("42", decimals=0, symbol="T") == 42
    with pytest.raises(InvalidInput, match="T has 0 decimals"):
        parse_amount("4.2", decimals=0, symbol="T")
    assert format_amount(42, decimals=0, symbol="T") == "42 T"


@pytest.mark.parametrize(
    ("units", "text"),
    [
        (150_000_000, "1.5"),
        (0, "0.0"),
        (1, "0.00000001"),
        (10_000, "0.0001"),
        (100 * 10**8, "100.0"),
        (2**63 - 1, "92233720368.54775807"),
        (-5, "-0.00000005"),
    ],
)
def test_format(units: int, text: str) -> None:
    assert format_amount(units, decimals=8) == text
    if units >= 0:
        assert cft(text) == units  # round trip


def test_errors_are_described_in_tokens() -> None:
    def describe(error: object) -> str:
        return describe_error(error, decimals=8, symbol="CFT")

    assert describe(InsufficientFunds(210_000_000)) == "insufficient funds: the balance is 2.1 CFT"
    assert describe(BadFee(10_000)) == "wrong fee: the ledger charges 0.0001 CFT"
    assert "block 7" in describe(Duplicate(7))
    assert "24-hour" in describe(TooOld())
