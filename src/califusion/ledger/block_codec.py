"""The ICRC-3 hash and canonical JSON of a block, computed straight from its fields.

The definitions are :func:`~califusion.ledger.icrc3.hash_value` and
:func:`~califusion.ledger.icrc3.encode_value` of ``block.to_value()``; this module gives the
same bytes without building the ``Value`` tree, because the ledger's write path hashes and
encodes every block it appends. What it saves: the hashes of map keys and of ``op`` texts are
constants, an account's hash is remembered (a ledger sees the same accounts again and again),
and no intermediate objects are made. ``tests/ledger/test_block_codec.py`` checks both paths
agree on random blocks; the verifier (:mod:`califusion.ledger.verify`) recomputes every hash
with the generic definition, so the two are checked against each other on every ``verify``.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from califusion.crypto.principal import Account
from califusion.ledger.blocks import Block, Op, Transaction
from califusion.ledger.icrc3 import leb128


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


_KEY = {
    name: _sha256(name.encode())
    for name in (
        "phash", "ts", "fee", "tx", "op", "from", "to", "spender", "amt", "memo",
        "expected_allowance", "expires_at",
    )
}  # fmt: skip
_OP = {op: _sha256(op.value.encode()) for op in Op}


@lru_cache(maxsize=1 << 16)
def _account_hash(account: Account) -> bytes:
    """Hash of the ICRC-3 account ``[owner]`` or ``[owner, subaccount]``."""
    parts = _sha256(account.owner.raw)
    if account.subaccount is not None:
        parts += _sha256(account.subaccount)
    return _sha256(parts)


def _nat(value: int) -> bytes:
    return _sha256(leb128(value))


def transaction_hash(tx: Transaction) -> bytes:
    """``hash_value(tx.to_value())``: the deduplication key."""
    pairs = [_KEY["op"] + _OP[tx.op], _KEY["amt"] + _nat(tx.amount)]
    if tx.from_ is not None:
        pairs.append(_KEY["from"] + _account_hash(tx.from_))
    if tx.to is not None:
        pairs.append(_KEY["to"] + _account_hash(tx.to))
    if tx.spender is not None:
        pairs.append(_KEY["spender"] + _account_hash(tx.spender))
    if tx.fee is not None:
        pairs.append(_KEY["fee"] + _nat(tx.fee))
    if tx.memo is not None:
        pairs.append(_KEY["memo"] + _sha256(tx.memo))
    if tx.created_at_time is not None:
        pairs.append(_KEY["ts"] + _nat(tx.created_at_time))
    if tx.expected_allowance is not None:
        pairs.append(_KEY["expected_allowance"] + _nat(tx.expected_allowance))
    if tx.expires_at is not None:
        pairs.append(_KEY["expires_at"] + _nat(tx.expires_at))
    pairs.sort()
    return _sha256(b"".join(pairs))


def block_hash(block: Block, tx_hash: bytes | None = None) -> bytes:
    """``hash_value(block.to_value())``; pass ``tx_hash`` if it is already known."""
    pairs = [
        _KEY["ts"] + _nat(block.timestamp),
        _KEY["tx"] + (tx_hash if tx_hash is not None else transaction_hash(block.tx)),
    ]
    if block.parent_hash is not None:
        pairs.append(_KEY["phash"] + _sha256(block.parent_hash))
    if block.effective_fee is not None:
        pairs.append(_KEY["fee"] + _nat(block.effective_fee))
    pairs.sort()
    return _sha256(b"".join(pairs))


# The JSON is written directly: every string in it is a fixed key, an op name, decimal digits
# or hex, so nothing needs escaping, and the text is exactly what json.dumps would write with
# separators (",", ":").


@lru_cache(maxsize=1 << 16)
def _account_json(account: Account) -> str:
    items = _blob_json(account.owner.raw)
    if account.subaccount is not None:
        items += "," + _blob_json(account.subaccount)
    return f'{{"Array":[{items}]}}'


def _blob_json(data: bytes) -> str:
    return f'{{"Blob":"{data.hex()}"}}'


def _nat_json(value: int) -> str:
    return f'{{"Nat":"{value}"}}'


def _map_json(entries: list[str]) -> str:
    return '{"Map":[' + ",".join(entries) + "]}"


def _transaction_json(tx: Transaction) -> str:
    # Entries in sorted key order, as value_to_json writes them.
    entries = [f'["amt",{_nat_json(tx.amount)}]']
    if tx.expected_allowance is not None:
        entries.append(f'["expected_allowance",{_nat_json(tx.expected_allowance)}]')
    if tx.expires_at is not None:
        entries.append(f'["expires_at",{_nat_json(tx.expires_at)}]')
    if tx.fee is not None:
        entries.append(f'["fee",{_nat_json(tx.fee)}]')
    if tx.from_ is not None:
        entries.append(f'["from",{_account_json(tx.from_)}]')
    if tx.memo is not None:
        entries.append(f'["memo",{_blob_json(tx.memo)}]')
    entries.append(f'["op",{{"Text":"{tx.op.value}"}}]')
    if tx.spender is not None:
        entries.append(f'["spender",{_account_json(tx.spender)}]')
    if tx.to is not None:
        entries.append(f'["to",{_account_json(tx.to)}]')
    if tx.created_at_time is not None:
        entries.append(f'["ts",{_nat_json(tx.created_at_time)}]')
    return _map_json(entries)


def encode_block(block: Block) -> str:
    """``encode_value(block.to_value())``: the canonical JSON the store keeps."""
    entries = []
    if block.effective_fee is not None:
        entries.append(f'["fee",{_nat_json(block.effective_fee)}]')
    if block.parent_hash is not None:
        entries.append(f'["phash",{_blob_json(block.parent_hash)}]')
    entries.append(f'["ts",{_nat_json(block.timestamp)}]')
    entries.append(f'["tx",{_transaction_json(block.tx)}]')
    return _map_json(entries)
