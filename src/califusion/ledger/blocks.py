"""ICRC-1/2 transactions and blocks in the ICRC-3 legacy block schema.

A block is the ``Map`` ``{phash?, ts, fee?, tx}`` (no ``btype``: ICRC-3 says ICRC-1/2 blocks
MUST NOT carry one; their type is inferred from ``tx.op``), laid out as DFINITY's ICRC-1 ledger
does (``rs/ledger_suite/icrc1/src/lib.rs``):

- ``phash``: hash of the previous block, absent in block 0;
- ``ts``: ledger time in ns when the block was made;
- ``fee``: the fee the ledger charged, present only for ``xfer``/``approve`` blocks whose caller
  did not pass ``fee`` (when the caller did, ``tx.fee`` records it and it is the fee charged);
- ``tx``: ``op`` (``xfer``/``mint``/``burn``/``approve``), ``from``, ``to``, ``spender``, ``amt``,
  ``fee``, ``memo``, ``ts`` (the caller's ``created_at_time``), ``expected_allowance``,
  ``expires_at`` — only what the caller gave; accounts as arrays of blobs.

The hash of ``tx`` alone is the deduplication key, as the reference ledger's
``Transaction::hash`` is: two calls are duplicates iff their ``tx`` maps are equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from califusion.core.errors import InvalidInput
from califusion.crypto.principal import Account
from califusion.ledger.icrc3 import (
    Blob,
    Map,
    Nat,
    Text,
    Value,
    account_from_value,
    account_value,
    hash_value,
)


class Op(StrEnum):
    XFER = "xfer"
    MINT = "mint"
    BURN = "burn"
    APPROVE = "approve"


# Identifiers ICRC-3 assigns to the legacy block kinds (icrc3_supported_block_types).
BLOCK_TYPE_URLS: dict[str, str] = {
    "1burn": "https://github.com/dfinity/ICRC-1/blob/main/standards/ICRC-1/README.md",
    "1mint": "https://github.com/dfinity/ICRC-1/blob/main/standards/ICRC-1/README.md",
    "1xfer": "https://github.com/dfinity/ICRC-1/blob/main/standards/ICRC-1/README.md",
    "2approve": "https://github.com/dfinity/ICRC-1/blob/main/standards/ICRC-2/README.md",
    "2burn": "https://github.com/dfinity/ICRC-1/blob/main/standards/ICRC-2/README.md",
    "2xfer": "https://github.com/dfinity/ICRC-1/blob/main/standards/ICRC-2/README.md",
}


@dataclass(frozen=True, slots=True)
class Transaction:
    """The ``tx`` of a block: the caller's intent, with only the optional fields they gave."""

    op: Op
    amount: int
    from_: Account | None = None
    to: Account | None = None
    spender: Account | None = None
    fee: int | None = None
    memo: bytes | None = None
    created_at_time: int | None = None
    expected_allowance: int | None = None
    expires_at: int | None = None

    def __post_init__(self) -> None:
        needs_from = self.op in (Op.XFER, Op.BURN, Op.APPROVE)
        needs_to = self.op in (Op.XFER, Op.MINT)
        if needs_from != (self.from_ is not None) or needs_to != (self.to is not None):
            raise InvalidInput(f"a {self.op} transaction has the wrong from/to fields")
        if self.op == Op.APPROVE and self.spender is None:
            raise InvalidInput("an approve transaction names a spender")
        if self.op in (Op.MINT, Op.BURN) and self.fee is not None:
            raise InvalidInput(f"a {self.op} transaction carries no fee")

    def to_value(self) -> Map:
        return Map.of(
            {
                "op": Text(self.op.value),
                "from": account_value(self.from_) if self.from_ is not None else None,
                "to": account_value(self.to) if self.to is not None else None,
                "spender": account_value(self.spender) if self.spender is not None else None,
                "amt": Nat(self.amount),
                "fee": _opt_nat(self.fee),
                "memo": Blob(self.memo) if self.memo is not None else None,
                "ts": _opt_nat(self.created_at_time),
                "expected_allowance": _opt_nat(self.expected_allowance),
                "expires_at": _opt_nat(self.expires_at),
            }
        )

    def hash(self) -> bytes:
        """The deduplication key: the ICRC-3 hash of ``tx``."""
        return hash_value(self.to_value())

    @classmethod
    def from_value(cls, value: Value) -> Transaction:
        if not isinstance(value, Map):
            raise InvalidInput("tx must be a Map")
        known = {"op", "from", "to", "spender", "amt", "fee", "memo", "ts"}
        known |= {"expected_allowance", "expires_at"}
        unknown = set(value.keys()) - known
        if unknown:
            raise InvalidInput(f"tx has unknown fields {sorted(unknown)}")
        op_value = value.get("op")
        if not isinstance(op_value, Text) or op_value.value not in set(Op):
            raise InvalidInput("tx.op is missing or unknown")
        return cls(
            op=Op(op_value.value),
            amount=_req_nat(value, "amt"),
            from_=_opt_account(value, "from"),
            to=_opt_account(value, "to"),
            spender=_opt_account(value, "spender"),
            fee=_get_nat(value, "fee"),
            memo=_get_blob(value, "memo"),
            created_at_time=_get_nat(value, "ts"),
            expected_allowance=_get_nat(value, "expected_allowance"),
            expires_at=_get_nat(value, "expires_at"),
        )


@dataclass(frozen=True, slots=True)
class Block:
    """One entry of the block log."""

    tx: Transaction
    timestamp: int
    parent_hash: bytes | None = None
    effective_fee: int | None = None

    def to_value(self) -> Map:
        return Map.of(
            {
                "phash": Blob(self.parent_hash) if self.parent_hash is not None else None,
                "ts": Nat(self.timestamp),
                "fee": _opt_nat(self.effective_fee),
                "tx": self.tx.to_value(),
            }
        )

    def hash(self) -> bytes:
        return hash_value(self.to_value())

    @classmethod
    def from_value(cls, value: Value) -> Block:
        if not isinstance(value, Map):
            raise InvalidInput("a block must be a Map")
        unknown = set(value.keys()) - {"phash", "ts", "fee", "tx"}
        if unknown:
            raise InvalidInput(f"block has unknown fields {sorted(unknown)}")
        tx = value.get("tx")
        if tx is None:
            raise InvalidInput("block has no tx")
        return cls(
            tx=Transaction.from_value(tx),
            timestamp=_req_nat(value, "ts"),
            parent_hash=_get_blob(value, "phash"),
            effective_fee=_get_nat(value, "fee"),
        )

    @property
    def fee_charged(self) -> int:
        """ICRC-3 "effective fee": top-level ``fee``, else ``tx.fee``, else 0."""
        if self.effective_fee is not None:
            return self.effective_fee
        return self.tx.fee if self.tx.fee is not None else 0

    @property
    def block_type(self) -> str:
        """The ICRC-3 identifier of this legacy block (``1xfer``, ``2xfer``, ``2approve``, ...)."""
        delegated = self.tx.spender is not None
        match self.tx.op:
            case Op.XFER:
                return "2xfer" if delegated else "1xfer"
            case Op.BURN:
                return "2burn" if delegated else "1burn"
            case Op.MINT:
                return "2mint" if delegated else "1mint"
            case Op.APPROVE:
                return "2approve"
        raise InvalidInput(f"unknown op {self.tx.op}")  # pragma: no cover


def _opt_nat(value: int | None) -> Nat | None:
    return Nat(value) if value is not None else None


def _get_nat(value: Map, key: str) -> int | None:
    item = value.get(key)
    if item is None:
        return None
    if not isinstance(item, Nat):
        raise InvalidInput(f"{key} must be a Nat")
    return item.value


def _req_nat(value: Map, key: str) -> int:
    item = _get_nat(value, key)
    if item is None:
        raise InvalidInput(f"{key} is required")
    return item


def _get_blob(value: Map, key: str) -> bytes | None:
    item = value.get(key)
    if item is None:
        return None
    if not isinstance(item, Blob):
        raise InvalidInput(f"{key} must be a Blob")
    return item.value


def _opt_account(value: Map, key: str) -> Account | None:
    item = value.get(key)
    return account_from_value(item) if item is not None else None
