"""Re-verify a ledger from its blocks alone, and compare with what the store claims.

:func:`verify_chain` trusts nothing it is given: it decodes every block, recomputes its hash,
checks it against the stored hash and against the next block's ``phash``, checks the decoded
search columns against the block, replays every block into balances, allowances and total supply,
and finally compares those with the store's balances, allowances and tip row. Every discrepancy
is reported with the block index (when there is one), what was expected and what was found.
:func:`verify_store` does the same for a :class:`~califusion.ledger.store.LedgerStore`, reading
everything in one consistent transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from califusion.core.errors import InvalidInput
from califusion.crypto.principal import Account
from califusion.ledger.blocks import Block, Op
from califusion.ledger.icrc3 import hash_value
from califusion.ledger.model import AllowanceKey, ChainTip, StoredAllowance
from califusion.ledger.schema import block_columns
from califusion.ledger.store import LedgerStore, StoredBlock


@dataclass(frozen=True, slots=True)
class Discrepancy:
    """One thing that does not add up."""

    subject: str
    expected: str
    found: str
    block_index: int | None = None

    def __str__(self) -> str:
        where = f"block {self.block_index}: " if self.block_index is not None else ""
        return f"{where}{self.subject}: expected {self.expected}, found {self.found}"


@dataclass(frozen=True, slots=True)
class VerificationReport:
    """What the blocks say, and every place the store disagrees with them."""

    blocks_checked: int
    tip_hash: bytes | None
    total_supply: int
    balances: Mapping[Account, int]
    allowances: Mapping[AllowanceKey, tuple[int, int | None]]
    discrepancies: tuple[Discrepancy, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.discrepancies

    def summary(self) -> str:
        if self.ok:
            return f"{self.blocks_checked} blocks verified, total supply {self.total_supply}"
        lines = [f"{len(self.discrepancies)} discrepancies in {self.blocks_checked} blocks:"]
        lines += [f"  {d}" for d in self.discrepancies]
        return "\n".join(lines)


def _hex(data: bytes | None) -> str:
    return data.hex() if data is not None else "none"


class _Replay:
    """Balances, allowances and supply recomputed from blocks, with the problems met."""

    def __init__(self) -> None:
        self.balances: dict[Account, int] = {}
        self.allowances: dict[AllowanceKey, tuple[int, int | None]] = {}
        self.supply = 0
        self.problems: list[Discrepancy] = []

    def _move(self, account: Account, delta: int, index: int) -> None:
        balance = self.balances.get(account, 0) + delta
        if balance < 0:
            self.problems.append(
                Discrepancy(f"balance of {account}", "≥ 0 after the block", str(balance), index)
            )
        self.balances[account] = balance

    def _spend(self, owner: Account, spender: Account, used: int, block: Block, index: int) -> None:
        key = (owner, spender)
        amount, expires_at = self.allowances.get(key, (0, None))
        live = expires_at is None or expires_at > block.timestamp
        if not live or amount < used:
            found = str(amount if live else 0)
            subject = f"allowance of {spender} on {owner}"
            self.problems.append(Discrepancy(subject, f"≥ {used}", found, index))
        rest = amount - used
        if rest > 0:
            self.allowances[key] = (rest, expires_at)
        else:
            self.allowances.pop(key, None)

    def apply(self, block: Block, index: int) -> None:
        tx, fee = block.tx, block.fee_charged
        delegate = tx.spender if tx.spender is not None and tx.spender != tx.from_ else None
        match tx.op:
            case Op.MINT:
                assert tx.to is not None
                self._move(tx.to, tx.amount - fee, index)
                self.supply += tx.amount - fee
            case Op.BURN:
                assert tx.from_ is not None
                self._move(tx.from_, -(tx.amount + fee), index)
                self.supply -= tx.amount + fee
                if delegate is not None:
                    self._spend(tx.from_, delegate, tx.amount + fee, block, index)
            case Op.XFER:
                assert tx.from_ is not None and tx.to is not None
                self._move(tx.from_, -(tx.amount + fee), index)
                self._move(tx.to, tx.amount, index)
                self.supply -= fee
                if delegate is not None:
                    self._spend(tx.from_, delegate, tx.amount + fee, block, index)
            case Op.APPROVE:
                assert tx.from_ is not None and tx.spender is not None
                self._move(tx.from_, -fee, index)
                self.supply -= fee
                key = (tx.from_, tx.spender)
                if tx.amount:
                    self.allowances[key] = (tx.amount, tx.expires_at)
                else:
                    self.allowances.pop(key, None)


def verify_chain(
    blocks: Iterable[StoredBlock],
    *,
    balances: Mapping[Account, int] | None = None,
    allowances: Mapping[AllowanceKey, StoredAllowance] | None = None,
    tip: ChainTip | None = None,
) -> VerificationReport:
    """Check ``blocks`` (in index order) and compare the store's state when it is given."""
    replay = _Replay()
    problems = replay.problems
    previous_hash: bytes | None = None
    previous_ts = 0
    count = 0
    for stored in blocks:
        index = stored.index
        if index != count:
            problems.append(Discrepancy("block index", str(count), str(index), index))
        count += 1
        try:
            value = stored.value()
            block = Block.from_value(value)
        except InvalidInput as exc:
            problems.append(Discrepancy("block encoding", "a valid ICRC-3 block", str(exc), index))
            previous_hash = stored.hash
            continue
        recomputed = hash_value(value)
        if recomputed != stored.hash:
            problems.append(Discrepancy("stored hash", _hex(recomputed), _hex(stored.hash), index))
        if block.parent_hash != previous_hash:
            problems.append(
                Discrepancy("phash", _hex(previous_hash), _hex(block.parent_hash), index)
            )
        if stored.parent_hash != block.parent_hash:
            subject = "phash column"
            problems.append(
                Discrepancy(subject, _hex(block.parent_hash), _hex(stored.parent_hash), index)
            )
        if block.timestamp < previous_ts:
            problems.append(Discrepancy("ts", f"≥ {previous_ts}", str(block.timestamp), index))
        expected_columns = block_columns(block)
        for name, expected in expected_columns.items():
            found = stored.columns.get(name)
            if found != expected:
                problems.append(Discrepancy(f"{name} column", repr(expected), repr(found), index))
        replay.apply(block, index)
        previous_hash, previous_ts = recomputed, block.timestamp

    if balances is not None:
        _compare_balances(replay.balances, balances, problems)
    if allowances is not None:
        _compare_allowances(replay.allowances, allowances, problems)
    if tip is not None:
        _compare_tip(tip, count, previous_hash, replay.supply, problems)
    return VerificationReport(
        blocks_checked=count,
        tip_hash=previous_hash,
        total_supply=replay.supply,
        balances={a: b for a, b in replay.balances.items() if b},
        allowances=dict(replay.allowances),
        discrepancies=tuple(problems),
    )


def _compare_balances(
    computed: Mapping[Account, int], stored: Mapping[Account, int], problems: list[Discrepancy]
) -> None:
    for account in sorted(set(computed) | set(stored), key=str):
        expected, found = computed.get(account, 0), stored.get(account, 0)
        if expected != found:
            problems.append(Discrepancy(f"balance of {account}", str(expected), str(found)))


def _compare_allowances(
    computed: Mapping[AllowanceKey, tuple[int, int | None]],
    stored: Mapping[AllowanceKey, StoredAllowance],
    problems: list[Discrepancy],
) -> None:
    for key in sorted(set(computed) | set(stored), key=lambda k: (str(k[0]), str(k[1]))):
        expected = computed.get(key)
        row = stored.get(key)
        found = (row.amount, row.expires_at) if row is not None else None
        if expected != found:
            subject = f"allowance of {key[1]} on {key[0]}"
            problems.append(Discrepancy(subject, repr(expected), repr(found)))


def _compare_tip(
    tip: ChainTip, length: int, last_hash: bytes | None, supply: int, problems: list[Discrepancy]
) -> None:
    if tip.length != length:
        problems.append(Discrepancy("tip length", str(length), str(tip.length)))
    if tip.last_hash != last_hash:
        problems.append(Discrepancy("tip hash", _hex(last_hash), _hex(tip.last_hash)))
    if tip.total_supply != supply:
        problems.append(Discrepancy("total supply", str(supply), str(tip.total_supply)))


def verify_store(store: LedgerStore) -> VerificationReport:
    """Verify everything ``store`` holds, read in one transaction."""
    with store.read() as reader:
        return verify_chain(
            reader.iter_blocks(),
            balances=reader.balances(),
            allowances=reader.allowances(),
            tip=reader.tip(),
        )
