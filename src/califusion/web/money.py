"""The dashboard's side of the ledger: balances, transfers, history, and the checked block log.

Everything comes from the ledger's HTTP API (``/ledger/v1``) as this user, never from its
database: :class:`LedgerDesk` holds one :class:`~califusion.agent.ledger_client.HttpLedgerAPI`
signed with the dashboard's identity.

The explorer does not take the ledger's word for its blocks. :meth:`LedgerDesk.check_chain`
reads the log with ``icrc3_get_blocks``, recomputes every block's ICRC-3 hash, checks each
``phash`` against the hash before it, and compares the tip with the ledger's signed tip
certificate (:func:`~califusion.ledger.certificate.verify_tip_certificate`), against the
operator key given to ``califusion ui --ledger-key`` — never a key that came from the ledger.
The check is incremental: blocks already verified are not read again.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from califusion.agent.ledger_client import HttpLedgerAPI
from califusion.core.errors import CaliFusionError, InvalidInput
from califusion.crypto.identity import Identity
from califusion.crypto.principal import Account, Principal
from califusion.ledger.amounts import memo_text
from califusion.ledger.blocks import Block
from califusion.ledger.certificate import verify_tip_certificate
from califusion.ledger.escrow_ids import (
    DEPOSIT_MEMO_BYTES,
    MEMO_PREFIX,
    PAYMENT_MEMO_BYTES,
    TAG_BYTES,
    DepositKind,
    PaymentKind,
    escrow_account,
    job_tag,
)
from califusion.ledger.icrc3 import hash_value
from califusion.ledger.service import BlockWithId

__all__ = [
    "BlockRow",
    "ChainCheck",
    "LedgerDesk",
    "MemoInfo",
    "TokenInfo",
    "describe_memo",
    "job_tags",
]

log = logging.getLogger(__name__)

PAGE = 500  # blocks per icrc3_get_blocks call while checking the chain
MEMO_KINDS = {
    DepositKind.FUND.value: "reward pool",
    DepositKind.STAKE.value: "stake",
    DepositKind.BUY.value: "model purchase",
    PaymentKind.PAYOUT.value: "escrow payout",
    PaymentKind.SALE.value: "sale proceeds",
    PaymentKind.REFUND.value: "escrow refund",
}


@dataclass(frozen=True)
class TokenInfo:
    """The ledger's token: how amounts read, and what a transfer costs."""

    symbol: str
    decimals: int
    fee: int


@dataclass(frozen=True)
class MemoInfo:
    """What an escrow memo says: its kind (``P`` payout ...) and the job's tag."""

    kind: str
    tag: bytes

    @property
    def label(self) -> str:
        return MEMO_KINDS.get(self.kind, "escrow")

    @property
    def is_payment(self) -> bool:
        return self.kind in {k.value for k in PaymentKind}


def describe_memo(memo: bytes | None) -> MemoInfo | None:
    """The escrow meaning of a memo (deposit or payment); None for any other memo."""
    if memo is None or not memo.startswith(MEMO_PREFIX):
        return None
    if len(memo) not in (DEPOSIT_MEMO_BYTES, PAYMENT_MEMO_BYTES):
        return None
    kind = memo[len(MEMO_PREFIX) : len(MEMO_PREFIX) + 1].decode("latin-1")
    if kind not in MEMO_KINDS:
        return None
    start = len(MEMO_PREFIX) + 1
    return MemoInfo(kind, memo[start : start + TAG_BYTES])


@dataclass(frozen=True)
class BlockRow:
    """One block as the pages show it (hash recomputed here, not taken from the ledger)."""

    index: int
    time_s: float
    kind: str
    op: str
    from_: Account | None
    to: Account | None
    spender: Account | None
    amount: int
    fee: int
    memo: str
    escrow: MemoInfo | None
    hash: str
    parent_hash: str

    @classmethod
    def of(cls, item: BlockWithId) -> BlockRow:
        block = Block.from_value(item.block)
        tx = block.tx
        return cls(
            index=item.id,
            time_s=block.timestamp / 1e9,
            kind=block.block_type,
            op=tx.op.value,
            from_=tx.from_,
            to=tx.to,
            spender=tx.spender,
            amount=tx.amount,
            fee=block.fee_charged,
            memo=memo_text(tx.memo),
            escrow=describe_memo(tx.memo),
            hash=hash_value(item.block).hex(),
            parent_hash=block.parent_hash.hex() if block.parent_hash is not None else "",
        )

    def touches(self, owner: Principal) -> bool:
        return any(a is not None and a.owner == owner for a in (self.from_, self.to, self.spender))


@dataclass
class ChainCheck:
    """The result of the client-side check of the block log."""

    length: int = 0
    tip_hash: str = ""
    problems: list[str] = field(default_factory=list)
    certificate: str = "not read yet"
    certificate_ok: bool | None = None
    checked_at: float = 0.0
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and not self.problems and self.certificate_ok is not False


class LedgerDesk:
    """This user's ledger calls, and the incremental check of the whole block log."""

    def __init__(
        self,
        identity: Identity,
        ledger_url: str,
        trusted_key: bytes | None = None,
        *,
        default_symbol: str = "CFT",
        default_decimals: int = 8,
    ) -> None:
        self.identity = identity
        self.ledger_url = ledger_url
        self.api = HttpLedgerAPI(ledger_url, identity, timeout=15.0)
        self._trusted_key = trusted_key
        self._default = TokenInfo(default_symbol, default_decimals, 0)
        self._token: TokenInfo | None = None
        self._lock = threading.Lock()  # one chain check at a time; guards the fields below
        self._hashes: list[bytes] = []
        self._mine: set[Account] = set()
        self._payouts: list[BlockRow] = []

    @property
    def account(self) -> Account:
        return Account(self.identity.principal)

    def close(self) -> None:
        self.api.close()

    # ---- token ---------------------------------------------------------------------------------

    def token(self) -> TokenInfo:
        """The ledger's symbol, decimals and fee (read once; raises if the ledger is down)."""
        if self._token is None:
            self._token = TokenInfo(
                self.api.icrc1_symbol(), self.api.icrc1_decimals(), self.api.icrc1_fee()
            )
        return self._token

    def display_token(self) -> TokenInfo:
        """The token as known so far, without a call: the defaults until the ledger answered."""
        return self._token or self._default

    # ---- balances and history ------------------------------------------------------------------

    def balance(self, account: Account | None = None) -> int:
        return self.api.icrc1_balance_of(account or self.account)

    def my_accounts(self) -> list[Account]:
        """The default account and every subaccount of mine the checked chain has shown."""
        with self._lock:
            found = {a for a in self._mine if a.owner == self.identity.principal}
        found.discard(self.account)
        others = sorted(found, key=lambda a: a.effective_subaccount)
        return [self.account, *others]

    def history(
        self, account: Account | None = None, *, before: int | None = None, limit: int = 50
    ) -> list[BlockRow]:
        """Blocks touching ``account`` (default: mine), newest first, index below ``before``."""
        blocks = self.api.account_blocks(account or self.account, start=before, max_results=limit)
        return [BlockRow.of(b) for b in blocks]

    def blocks(self, start: int, length: int) -> tuple[int, list[BlockRow]]:
        """The log's length and blocks ``start .. start + length - 1``."""
        result = self.api.icrc3_get_blocks(start, length)
        return result.log_length, [BlockRow.of(b) for b in result.blocks]

    def payouts(self, tags: dict[bytes, str]) -> list[BlockRow]:
        """Escrow payments to me (payouts, sale proceeds, refunds) for the jobs of ``tags`` (job
        tag → job id), oldest first: blocks to my main account from that job's escrow account
        whose memo is an escrow payment memo naming the job."""
        found: list[BlockRow] = []
        before: int | None = None
        for _ in range(20):  # at most 2,000 of my blocks: plenty for a dashboard
            rows = self.history(before=before, limit=100)
            for row in rows:
                if (
                    row.escrow is not None
                    and row.escrow.is_payment
                    and row.to == self.account
                    and row.escrow.tag in tags
                    and row.from_ == escrow_account(tags[row.escrow.tag])  # not a lookalike memo
                ):
                    found.append(row)
            if len(rows) < 100:
                break
            before = rows[-1].index
        return sorted(found, key=lambda r: r.index)

    # ---- the chain check -----------------------------------------------------------------------

    def check_chain(self) -> ChainCheck:
        """Verify every block not verified before, and the tip certificate."""
        with self._lock:
            check = ChainCheck(checked_at=time.time())
            try:
                self._check(check)
            except CaliFusionError as exc:
                check.error = f"cannot read the ledger: {exc}"
            check.length = len(self._hashes)
            check.tip_hash = self._hashes[-1].hex() if self._hashes else ""
            return check

    def _check(self, check: ChainCheck) -> None:
        certificate = self.api.icrc3_get_tip_certificate()
        if certificate is None:
            target = self.api.icrc3_get_blocks(0, 0).log_length
        else:
            target = certificate.last_block_index + 1
        while len(self._hashes) < target and not check.problems:
            start = len(self._hashes)
            result = self.api.icrc3_get_blocks(start, min(PAGE, target - start))
            if not result.blocks:
                check.problems.append(f"the ledger returned no block at {start}")
                break
            for item in result.blocks:
                if not self._verify_block(item, check):
                    break
        if check.problems or target == 0:
            check.certificate = "not checked" if check.problems else "no blocks yet"
            return
        if certificate is None:
            check.certificate = "the ledger gave no tip certificate"
            check.certificate_ok = False
            return
        if certificate.last_block_hash != self._hashes[certificate.last_block_index]:
            check.certificate = (
                f"the certified tip hash of block {certificate.last_block_index} is not the "
                "hash of the blocks"
            )
            check.certificate_ok = False
            return
        if self._trusted_key is None:
            check.certificate = (
                f"tip hash of block {certificate.last_block_index} matches; the signature was "
                "not checked: start `califusion ui` with --ledger-key to trust the operator's key"
            )
            return
        try:
            verify_tip_certificate(certificate, self._trusted_key)
        except CaliFusionError:
            check.certificate = "the tip certificate's signature does not verify"
            check.certificate_ok = False
            return
        check.certificate = (
            f"block {certificate.last_block_index}'s hash is signed by the ledger operator"
        )
        check.certificate_ok = True

    def _verify_block(self, item: BlockWithId, check: ChainCheck) -> bool:
        index = len(self._hashes)
        if item.id != index:
            check.problems.append(f"expected block {index}, the ledger returned {item.id}")
            return False
        try:
            block = Block.from_value(item.block)
        except InvalidInput as exc:
            check.problems.append(f"block {index} is not a valid ICRC-3 block: {exc}")
            return False
        previous = self._hashes[-1] if self._hashes else None
        if block.parent_hash != previous:
            expected = previous.hex() if previous is not None else "none"
            found = block.parent_hash.hex() if block.parent_hash is not None else "none"
            check.problems.append(f"block {index}: parent hash {found}, expected {expected}")
            return False
        self._hashes.append(hash_value(item.block))
        tx = block.tx
        for account in (tx.from_, tx.to, tx.spender):
            if account is not None and account.owner == self.identity.principal:
                self._mine.add(account)
        return True


def job_tags(job_ids: list[str]) -> dict[bytes, str]:
    """Job tag (as escrow memos carry it) → job id."""
    return {job_tag(job_id): job_id for job_id in job_ids}
