"""The escrow's JSON shapes over HTTP (``/escrow/v1``), in the ledger's conventions.

Amounts and block indices are decimal strings (``"150000000"``), principals and accounts their
ICRC text, bytes base64url (a signed statement, exactly as ``SignedStatement.to_dict`` writes it)
or hex (a subaccount). Requests are validated strictly: unknown fields, numbers where strings
belong and malformed text are refused with the field named.
"""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, StringConstraints

from califusion.core.errors import InvalidInput
from califusion.crypto.principal import Account, Principal
from califusion.ledger.escrow import Ending
from califusion.ledger.escrow_ids import MAX_JOB_ID_BYTES
from califusion.ledger.escrow_store import EscrowStatus
from califusion.ledger.escrow_terms import EscrowTerms, SignedStatement, Weighting
from califusion.ledger.http_shapes import NatText, Subaccount

JobIdText = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_JOB_ID_BYTES, pattern=r"^[\x21-\x7e]+$")
]
# unpadded base64url; a round statement naming 10 000 trainers is under a megabyte
B64Text = Annotated[
    str, StringConstraints(min_length=1, max_length=2_000_000, pattern=r"^[A-Za-z0-9_-]+$")
]
AccountText = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


_Shape = TypeVar("_Shape", bound=_Strict)


class SignedStatementShape(_Strict):
    """A publisher's statement: canonical JSON payload, Ed25519 key and signature."""

    payload: B64Text
    signing_public: B64Text
    signature: B64Text

    def to_signed(self) -> SignedStatement:
        return SignedStatement.from_dict(self.model_dump())

    @classmethod
    def of(cls, signed: SignedStatement) -> SignedStatementShape:
        return cls(**signed.to_dict())


class CollectStakeShape(_Strict):
    """Ask the escrow to pull the caller's stake (the caller approved the job's escrow account)."""

    job_id: JobIdText
    from_subaccount: Subaccount | None = None

    def subaccount(self) -> bytes | None:
        return bytes.fromhex(self.from_subaccount) if self.from_subaccount is not None else None


class BlockIndexShape(_Strict):
    block_index: NatText


class TermsShape(_Strict):
    job_id: JobIdText
    publisher: str
    reward_pool: NatText
    stake: NatText
    price: NatText | None
    rounds: int
    deadline_ns: NatText
    weighting: Weighting
    min_participation_bps: int
    sale_publisher_bps: int

    def to_terms(self) -> EscrowTerms:
        return EscrowTerms(
            job_id=self.job_id,
            publisher=Principal.from_text(self.publisher),
            reward_pool=int(self.reward_pool),
            stake=int(self.stake),
            price=int(self.price) if self.price is not None else None,
            rounds=self.rounds,
            deadline_ns=int(self.deadline_ns),
            weighting=self.weighting,
            min_participation_bps=self.min_participation_bps,
            sale_publisher_bps=self.sale_publisher_bps,
        )

    @classmethod
    def of(cls, terms: EscrowTerms) -> TermsShape:
        return cls(
            job_id=terms.job_id,
            publisher=terms.publisher.to_text(),
            reward_pool=str(terms.reward_pool),
            stake=str(terms.stake),
            price=str(terms.price) if terms.price is not None else None,
            rounds=terms.rounds,
            deadline_ns=str(terms.deadline_ns),
            weighting=terms.weighting,
            min_participation_bps=terms.min_participation_bps,
            sale_publisher_bps=terms.sale_publisher_bps,
        )


class StatusShape(_Strict):
    """:class:`~califusion.ledger.escrow_store.EscrowStatus`: stakes as principal → amount,
    purchases as buyer → the purchase's block index."""

    job_id: JobIdText
    account: AccountText
    balance: NatText
    terms: TermsShape | None
    funded: NatText
    stakes: dict[str, NatText]
    purchases: dict[str, NatText]
    rounds_recorded: int
    ending: Ending | None
    payments_made: int

    def to_status(self) -> EscrowStatus:
        return EscrowStatus(
            job_id=self.job_id,
            account=Account.from_text(self.account),
            balance=int(self.balance),
            terms=self.terms.to_terms() if self.terms is not None else None,
            funded=int(self.funded),
            stakes={Principal.from_text(p): int(a) for p, a in self.stakes.items()},
            purchases={Principal.from_text(p): int(b) for p, b in self.purchases.items()},
            rounds_recorded=self.rounds_recorded,
            ending=self.ending,
            payments_made=self.payments_made,
        )

    @classmethod
    def of(cls, status: EscrowStatus) -> StatusShape:
        return cls(
            job_id=status.job_id,
            account=status.account.to_text(),
            balance=str(status.balance),
            terms=TermsShape.of(status.terms) if status.terms is not None else None,
            funded=str(status.funded),
            stakes={p.to_text(): str(a) for p, a in status.stakes.items()},
            purchases={p.to_text(): str(b) for p, b in status.purchases.items()},
            rounds_recorded=status.rounds_recorded,
            ending=status.ending,
            payments_made=status.payments_made,
        )


def parse_reply(shape: type[_Shape], data: object) -> _Shape:
    """Validate the escrow's reply; a malformed one is :class:`InvalidInput` naming the shape."""
    try:
        return shape.model_validate(data)
    except ValueError as exc:
        raise InvalidInput(f"malformed {shape.__name__} from the escrow: {exc}") from exc


__all__ = [
    "BlockIndexShape",
    "CollectStakeShape",
    "SignedStatementShape",
    "StatusShape",
    "TermsShape",
    "parse_reply",
]
