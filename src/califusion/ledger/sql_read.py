"""Reading the ledger's tables inside one transaction: :class:`StoreReader`.

A reader implements :class:`~califusion.ledger.model.LedgerView` (tip, balance, allowance, dedup
lookup), serves block ranges and per-account block history, and reads the whole state at once
for the verifier and for the single writer's in-memory cache.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Select, select, union

from califusion.crypto.principal import Account, Principal
from califusion.ledger.icrc3 import Value, decode_value
from califusion.ledger.model import AllowanceKey, ChainTip, StoredAllowance
from califusion.ledger.schema import (
    TIP_ID,
    account_key,
    allowances_table,
    balances_table,
    blocks_table,
    dedup_table,
    tip_table,
)

_DECODED_COLUMNS = (
    "kind", "from_owner", "from_sub", "to_owner", "to_sub", "spender_owner", "spender_sub",
    "amount", "fee", "memo", "ts", "created_at_time",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class StoredBlock:
    """A block row: what was stored, to be re-verified, not trusted."""

    index: int
    hash: bytes
    parent_hash: bytes | None
    encoded: str
    columns: Mapping[str, Any]

    def value(self) -> Value:
        return decode_value(self.encoded)


@dataclass(frozen=True, slots=True)
class DedupEntry:
    """A remembered transaction: its ``tx`` hash, block index and block time."""

    tx_hash: bytes
    block_index: int
    block_ts: int


def stored_account(owner: bytes, subaccount: bytes) -> Account:
    return Account(Principal(bytes(owner)), bytes(subaccount))


def decode_nat64(text: str | None) -> int | None:
    return int(text) if text is not None else None


def _stored_block(row: Any) -> StoredBlock:
    mapping = row._mapping
    columns = {name: mapping[name] for name in _DECODED_COLUMNS}
    for name, value in columns.items():
        if isinstance(value, memoryview):
            columns[name] = bytes(value)
    phash = mapping["phash"]
    return StoredBlock(
        index=mapping["idx"],
        hash=bytes(mapping["hash"]),
        parent_hash=bytes(phash) if phash is not None else None,
        encoded=mapping["encoded"],
        columns=columns,
    )


def _allowance_where(account: Account, spender: Account) -> tuple[Any, ...]:
    owner, sub = account_key(account)
    spender_owner, spender_sub = account_key(spender)
    c = allowances_table.c
    return (
        c.owner == owner,
        c.subaccount == sub,
        c.spender_owner == spender_owner,
        c.spender_subaccount == spender_sub,
    )


class StoreReader:
    """Reads inside one transaction; implements :class:`~califusion.ledger.model.LedgerView`."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def tip(self) -> ChainTip:
        return self.read_tip(lock=False)

    def read_tip(self, *, lock: bool) -> ChainTip:
        stmt = select(tip_table).where(tip_table.c.id == TIP_ID)
        row = self._conn.execute(stmt.with_for_update() if lock else stmt).one()
        last_hash = row.last_hash
        return ChainTip(
            length=row.length,
            last_hash=bytes(last_hash) if last_hash is not None else None,
            last_timestamp=row.last_ts,
            total_supply=row.total_supply,
        )

    def balance_of(self, account: Account) -> int:
        owner, sub = account_key(account)
        stmt = select(balances_table.c.amount).where(
            balances_table.c.owner == owner, balances_table.c.subaccount == sub
        )
        amount = self._conn.execute(stmt).scalar_one_or_none()
        return int(amount) if amount is not None else 0

    def allowance_of(self, account: Account, spender: Account) -> StoredAllowance | None:
        row = self._conn.execute(
            select(allowances_table).where(*_allowance_where(account, spender))
        ).first()
        if row is None:
            return None
        return StoredAllowance(int(row.amount), decode_nat64(row.expires_at), int(row.arrived_at))

    def find_transaction(self, tx_hash: bytes) -> int | None:
        stmt = select(dedup_table.c.block_index).where(dedup_table.c.tx_hash == tx_hash)
        index = self._conn.execute(stmt).scalar_one_or_none()
        return int(index) if index is not None else None

    def blocks(self, start: int, length: int) -> list[StoredBlock]:
        stmt = (
            select(blocks_table)
            .where(blocks_table.c.idx >= start, blocks_table.c.idx < start + length)
            .order_by(blocks_table.c.idx)
        )
        return [_stored_block(row) for row in self._conn.execute(stmt)]

    def iter_blocks(self, batch: int = 1000) -> Iterator[StoredBlock]:
        start = 0
        while True:
            chunk = self.blocks(start, batch)
            yield from chunk
            if len(chunk) < batch:
                return
            start = chunk[-1].index + 1

    def account_blocks(self, account: Account, before: int | None, limit: int) -> list[StoredBlock]:
        """Blocks where ``account`` is ``from``, ``to`` or ``spender``, newest first, each with
        an index below ``before`` (all when ``None``), at most ``limit`` of them.

        One index range scan per role (``(owner, sub, idx)`` indexes), merged; never a scan of
        the whole log, however long the account's history.
        """
        owner, sub = account_key(account)
        c = blocks_table.c
        branches: list[Select[Any]] = []
        for role in ("from", "to", "spender"):
            branch = select(c.idx).where(c[f"{role}_owner"] == owner, c[f"{role}_sub"] == sub)
            if before is not None:
                branch = branch.where(c.idx < before)
            limited = branch.order_by(c.idx.desc()).limit(limit).subquery()
            branches.append(select(limited.c.idx))
        ids = union(*branches).subquery()
        stmt = (
            select(blocks_table)
            .where(c.idx.in_(select(ids.c.idx)))
            .order_by(c.idx.desc())
            .limit(limit)
        )
        return [_stored_block(row) for row in self._conn.execute(stmt)]

    def balances(self) -> dict[Account, int]:
        rows = self._conn.execute(select(balances_table))
        return {stored_account(r.owner, r.subaccount): int(r.amount) for r in rows}

    def allowances(self) -> dict[AllowanceKey, StoredAllowance]:
        result: dict[AllowanceKey, StoredAllowance] = {}
        for row in self._conn.execute(select(allowances_table)):
            key = (
                stored_account(row.owner, row.subaccount),
                stored_account(row.spender_owner, row.spender_subaccount),
            )
            expires_at = decode_nat64(row.expires_at)
            result[key] = StoredAllowance(int(row.amount), expires_at, int(row.arrived_at))
        return result

    def dedup_entries(self) -> list[DedupEntry]:
        rows = self._conn.execute(select(dedup_table).order_by(dedup_table.c.block_index))
        return [DedupEntry(bytes(r.tx_hash), int(r.block_index), int(r.block_ts)) for r in rows]
