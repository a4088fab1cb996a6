"""What the escrow rules may believe: statements signed by the job's publisher.

The escrow takes no word from the coordinator. Besides ledger blocks and time, its only inputs
are statements that carry the publisher's Ed25519 signature, checked against the publisher's
principal (self-authenticating: ``SHA-224(DER key) ‖ 0x02``), so relaying them through anyone,
the coordinator included, changes nothing:

- :class:`EscrowTerms` — the job's money rules (pool, stake, price, payout rule, deadline). The
  first terms registered for a job bind it; the publisher agent checks what is registered before
  it funds, and trainers check it against the spec before they stake.
- :class:`RoundStatement` — round *n* closed: who was admitted, who contributed and with how many
  verified samples (the counts the publisher's agent checked when it opened the updates).
- :class:`CloseStatement` — the publisher cancels (only before any round statement) or declares
  the job failed (settle on the rounds proven so far).

Encoding: canonical JSON (sorted keys, no spaces, principals as text), signed as
``b"CALIFUSION-ESCROW-V1\\n" ‖ payload``. The signed bytes are kept as received, so a statement
can be re-verified by anyone later. Amounts are integers; shares are basis points (1/10 000), so
no float ever reaches a payment.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeAlias

from califusion.core.errors import BadSignature, InvalidInput
from califusion.crypto.encoding import b64d, b64e
from califusion.crypto.identity import Identity, PublicIdentity
from califusion.crypto.principal import Principal
from califusion.ledger.types import check_nat, check_nat64

SIGNATURE_PREFIX = b"CALIFUSION-ESCROW-V1\n"
BPS = 10_000
MAX_ROUNDS = 10_000
MAX_PARTICIPANTS = 10_000


class Weighting(StrEnum):
    """How the reward pool is split among contributors (see :mod:`califusion.ledger.escrow`)."""

    SAMPLES = "samples"  # Σ over rounds of verified samples: samples × rounds completed
    ROUNDS = "rounds"  # number of rounds contributed to
    EQUAL = "equal"  # one share per trainer that contributed at least once


class Outcome(StrEnum):
    CANCELLED = "cancelled"
    FAILED = "failed"


def _check_bps(name: str, value: int) -> None:
    check_nat(name, value)
    if value > BPS:
        raise InvalidInput(f"{name} is in basis points: at most {BPS}, got {value}")


@dataclass(frozen=True, slots=True)
class EscrowTerms:
    """A job's money rules, as its publisher signed them."""

    job_id: str
    publisher: Principal
    reward_pool: int
    stake: int
    price: int | None
    rounds: int
    deadline_ns: int  # after this, anyone may have the escrow settle on what was proven
    weighting: Weighting = Weighting.SAMPLES
    min_participation_bps: int = 5_000  # share of its rounds a trainer must contribute to
    sale_publisher_bps: int = 5_000  # the publisher's share of each sale; trainers get the rest

    def __post_init__(self) -> None:
        if not self.job_id:
            raise InvalidInput("terms name a job")
        for name in ("reward_pool", "stake"):
            check_nat(name, getattr(self, name))
        if self.price is not None:
            check_nat("price", self.price)
        if not 1 <= self.rounds <= MAX_ROUNDS:
            raise InvalidInput(f"rounds must be 1 to {MAX_ROUNDS}, got {self.rounds}")
        check_nat64("deadline_ns", self.deadline_ns)
        _check_bps("min_participation_bps", self.min_participation_bps)
        _check_bps("sale_publisher_bps", self.sale_publisher_bps)


@dataclass(frozen=True, slots=True)
class RoundStatement:
    """Round ``round`` closed; ``contributions`` are (trainer, verified samples)."""

    job_id: str
    round: int
    admitted: tuple[Principal, ...]
    contributions: tuple[tuple[Principal, int], ...]

    def __post_init__(self) -> None:
        # Canonical order (by principal text, as encoded), so equal statements compare equal.
        object.__setattr__(self, "admitted", tuple(sorted(self.admitted, key=_text)))
        ordered = tuple(sorted(self.contributions, key=lambda c: _text(c[0])))
        object.__setattr__(self, "contributions", ordered)
        if not 1 <= self.round <= MAX_ROUNDS:
            raise InvalidInput(f"round must be 1 to {MAX_ROUNDS}, got {self.round}")
        if not self.contributions:
            raise InvalidInput("a closed round has at least one contributor")
        trainers = [t for t, _ in self.contributions]
        if len(trainers) > MAX_PARTICIPANTS or len(self.admitted) > MAX_PARTICIPANTS:
            raise InvalidInput(f"at most {MAX_PARTICIPANTS} trainers per round")
        if len(set(trainers)) != len(trainers) or len(set(self.admitted)) != len(self.admitted):
            raise InvalidInput("a round statement names a trainer twice")
        for _, samples in self.contributions:
            check_nat("samples", samples)
            if samples == 0:
                raise InvalidInput("a contribution has at least one verified sample")

    @property
    def participants(self) -> frozenset[Principal]:
        """Trainers expected in this round: the admitted and whoever contributed."""
        return frozenset(self.admitted) | {t for t, _ in self.contributions}


@dataclass(frozen=True, slots=True)
class CloseStatement:
    job_id: str
    outcome: Outcome


Statement: TypeAlias = EscrowTerms | RoundStatement | CloseStatement


def _text(principal: Principal) -> str:
    return principal.to_text()


def encode_statement(statement: Statement) -> bytes:
    """Canonical JSON of a statement: the bytes its signature covers (after the prefix)."""
    body: dict[str, Any]
    if isinstance(statement, EscrowTerms):
        body = {
            "type": "terms",
            "job_id": statement.job_id,
            "publisher": _text(statement.publisher),
            "reward_pool": statement.reward_pool,
            "stake": statement.stake,
            "price": statement.price,
            "rounds": statement.rounds,
            "deadline_ns": statement.deadline_ns,
            "weighting": statement.weighting.value,
            "min_participation_bps": statement.min_participation_bps,
            "sale_publisher_bps": statement.sale_publisher_bps,
        }
    elif isinstance(statement, RoundStatement):
        body = {
            "type": "round",
            "job_id": statement.job_id,
            "round": statement.round,
            "admitted": sorted(_text(p) for p in statement.admitted),
            "contributions": sorted([_text(p), n] for p, n in statement.contributions),
        }
    else:
        body = {"type": "close", "job_id": statement.job_id, "outcome": statement.outcome.value}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


_KEYS = {
    "terms": {
        "type", "job_id", "publisher", "reward_pool", "stake", "price", "rounds",
        "deadline_ns", "weighting", "min_participation_bps", "sale_publisher_bps",
    },
    "round": {"type", "job_id", "round", "admitted", "contributions"},
    "close": {"type", "job_id", "outcome"},
}  # fmt: skip


def _int(body: dict[str, Any], key: str) -> int:
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"statement field {key} must be an integer")
    return value


def _str(body: dict[str, Any], key: str) -> str:
    value = body[key]
    if not isinstance(value, str):
        raise InvalidInput(f"statement field {key} must be text")
    return value


def decode_statement(payload: bytes) -> Statement:
    """Parse a canonical statement; anything not exactly canonical is refused."""
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput("a statement is canonical JSON") from exc
    if not isinstance(body, dict) or set(body) != _KEYS.get(body.get("type", ""), set()):
        raise InvalidInput("not a statement: unknown type or fields")
    try:
        statement = _decode(body)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"malformed statement: {exc}") from exc
    if encode_statement(statement) != payload:
        raise InvalidInput("a statement must be in canonical form")
    return statement


def _decode(body: dict[str, Any]) -> Statement:
    job_id = _str(body, "job_id")
    kind = body["type"]
    if kind == "terms":
        price = body["price"]
        return EscrowTerms(
            job_id=job_id,
            publisher=Principal.from_text(_str(body, "publisher")),
            reward_pool=_int(body, "reward_pool"),
            stake=_int(body, "stake"),
            price=None if price is None else _int(body, "price"),
            rounds=_int(body, "rounds"),
            deadline_ns=_int(body, "deadline_ns"),
            weighting=Weighting(_str(body, "weighting")),
            min_participation_bps=_int(body, "min_participation_bps"),
            sale_publisher_bps=_int(body, "sale_publisher_bps"),
        )
    if kind == "round":
        contributions = []
        for item in body["contributions"]:
            trainer, samples = item
            if isinstance(samples, bool) or not isinstance(samples, int):
                raise InvalidInput("samples must be an integer")
            contributions.append((Principal.from_text(trainer), samples))
        return RoundStatement(
            job_id=job_id,
            round=_int(body, "round"),
            admitted=tuple(Principal.from_text(p) for p in body["admitted"]),
            contributions=tuple(contributions),
        )
    return CloseStatement(job_id=job_id, outcome=Outcome(_str(body, "outcome")))


@dataclass(frozen=True, slots=True)
class SignedStatement:
    """A statement's canonical bytes, the signer's Ed25519 key and its signature."""

    payload: bytes
    signing_public: bytes
    signature: bytes

    @property
    def signer(self) -> Principal:
        return Principal.self_authenticating(self.signing_public)

    def verify(self) -> Statement:
        """Check the signature and parse; raises :class:`BadSignature` or InvalidInput."""
        if len(self.signing_public) != 32:
            raise BadSignature("a statement is signed with a 32-byte Ed25519 key")
        # PublicIdentity.verify uses only the signing key; the agreement key is a placeholder.
        PublicIdentity(self.signing_public, bytes(32)).verify(
            self.signature, SIGNATURE_PREFIX + self.payload
        )
        return decode_statement(self.payload)

    def to_dict(self) -> dict[str, str]:
        return {
            "payload": b64e(self.payload),
            "signing_public": b64e(self.signing_public),
            "signature": b64e(self.signature),
        }

    @classmethod
    def from_dict(cls, data: dict[str, str]) -> SignedStatement:
        return cls(b64d(data["payload"]), b64d(data["signing_public"]), b64d(data["signature"]))


def sign_statement(identity: Identity, statement: Statement) -> SignedStatement:
    """Sign ``statement`` as ``identity`` (the job's publisher)."""
    payload = encode_statement(statement)
    signature = identity.sign(SIGNATURE_PREFIX + payload)
    return SignedStatement(payload, identity.public().signing_public, signature)


def terms_differences(terms: EscrowTerms, expected: Mapping[str, object]) -> list[str]:
    """The fields of ``terms`` that differ from ``expected`` (principals and enums as text)."""
    actual: dict[str, object] = {
        "job_id": terms.job_id,
        "publisher": terms.publisher.to_text(),
        "reward_pool": terms.reward_pool,
        "stake": terms.stake,
        "price": terms.price,
        "rounds": terms.rounds,
        "deadline_ns": terms.deadline_ns,
        "weighting": terms.weighting.value,
        "min_participation_bps": terms.min_participation_bps,
        "sale_publisher_bps": terms.sale_publisher_bps,
    }
    return sorted(name for name, value in expected.items() if actual.get(name) != value)
