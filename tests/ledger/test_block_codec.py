"""The write path's direct hash and JSON of a block equal the generic ICRC-3 definitions."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from califusion.crypto.principal import Account, Principal
from califusion.ledger import Block, Commit, Op, Transaction, encode_value, hash_value
from califusion.ledger.block_codec import block_hash, encode_block, transaction_hash
from califusion.ledger.schema import block_columns, blocks_table
from califusion.ledger.sql_write import block_row

nats = st.one_of(st.integers(0, 300), st.integers(0, 2**64 - 1), st.integers(0, 2**80))
opt_nats = st.none() | nats
principals = st.binary(min_size=0, max_size=29).map(Principal)
accounts = st.builds(Account, principals, st.none() | st.binary(min_size=32, max_size=32))
memos = st.none() | st.binary(max_size=40)


@st.composite
def transactions(draw: st.DrawFn) -> Transaction:
    op = draw(st.sampled_from(list(Op)))
    needs_from = op in (Op.XFER, Op.BURN, Op.APPROVE)
    needs_to = op in (Op.XFER, Op.MINT)
    spender = draw(accounts) if op == Op.APPROVE else draw(st.none() | accounts)
    return Transaction(
        op,
        draw(nats),
        from_=draw(accounts) if needs_from else None,
        to=draw(accounts) if needs_to else None,
        spender=spender,
        fee=None if op in (Op.MINT, Op.BURN) else draw(opt_nats),
        memo=draw(memos),
        created_at_time=draw(opt_nats),
        expected_allowance=draw(opt_nats),
        expires_at=draw(opt_nats),
    )


blocks = st.builds(
    Block,
    transactions(),
    nats,
    st.none() | st.binary(min_size=32, max_size=32),
    opt_nats,
)


@settings(max_examples=300)
@given(blocks)
def test_direct_hash_and_json_equal_the_definitions(block: Block) -> None:
    value = block.to_value()
    assert transaction_hash(block.tx) == hash_value(block.tx.to_value()) == block.tx.hash()
    assert block_hash(block) == hash_value(value) == block.hash()
    assert block_hash(block, transaction_hash(block.tx)) == hash_value(value)
    assert encode_block(block) == encode_value(value)


def test_a_subaccount_of_zeros_is_the_default_account() -> None:
    owner = Principal(b"\x01" * 10)
    tx = Transaction(Op.MINT, 5, to=Account(owner, bytes(32)))
    assert transaction_hash(tx) == hash_value(Transaction(Op.MINT, 5, to=Account(owner)).to_value())


@settings(max_examples=100)
@given(blocks)
def test_the_stored_row_has_the_verifier_s_search_columns(block: Block) -> None:
    commit = Commit(7, block, block_hash(block), {}, {}, None, 0)
    row = dict(zip((c.name for c in blocks_table.columns), block_row(commit), strict=True))
    assert {name: row[name] for name in block_columns(block)} == block_columns(block)
    assert (row["idx"], row["hash"], row["phash"]) == (7, block.hash(), block.parent_hash)
    assert row["encoded"] == encode_value(block.to_value())
