"""Payments in the public job spec: the payout rule a job's escrow applies.

:class:`PayoutSpec` is what the escrow's rules read (through the terms the publisher signs,
``califusion.ledger.escrow_terms``): how the reward pool is split, who keeps their stake, how
sale proceeds are shared and how long the escrow waits before it settles on what was proven.
Shares are given here as fractions and signed as basis points (integers), so no float reaches a
payment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from califusion.protocol.jobs import JobSpec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PayoutSpec(_Strict):
    """The payout rule a job's escrow applies (see ``califusion.ledger.escrow``)."""

    weighting: Literal["samples", "rounds", "equal"] = Field(
        default="samples",
        description="reward ∝ Σ verified samples over rounds | rounds contributed | equal",
    )
    min_participation: float = Field(
        default=0.5, ge=0, le=1, description="share of its rounds a trainer must contribute to"
    )
    sale_publisher_share: float = Field(
        default=0.5, ge=0, le=1, description="the publisher's share of each sale"
    )
    settle_within_days: float = Field(
        default=30.0, gt=0, le=3650, description="the escrow settles on what was proven after this"
    )


def to_bps(fraction: float) -> int:
    """A fraction as basis points (1/10 000), rounded to the nearest."""
    return round(fraction * 10_000)


def format_tokens(amount: int, decimals: int = 8, symbol: str = "CFT") -> str:
    """``1234500000`` → ``"12.34500000 CFT"``: exact, from the integer of the smallest unit."""
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**decimals)
    number = f"{sign}{whole}.{frac:0{decimals}d}" if decimals else f"{sign}{whole}"
    return f"{number} {symbol}" if symbol else number


def escrow_fields(spec: JobSpec, publisher: str) -> dict[str, object]:
    """What a job's signed escrow terms must say, given its public spec and publisher."""
    return {
        "publisher": publisher,
        "reward_pool": spec.reward_pool,
        "stake": spec.stake,
        "price": spec.price,
        "rounds": spec.rounds,
        "weighting": spec.payout.weighting,
        "min_participation_bps": to_bps(spec.payout.min_participation),
        "sale_publisher_bps": to_bps(spec.payout.sale_publisher_share),
    }
