"""The escrow's principal, its per-job accounts and the memos of escrow money.

**The escrow principal has no key anywhere.** It is an *opaque* principal in the IC's sense
(the class canister ids belong to): ``SHA-224("califusion/escrow/v1") ‖ 0x01``. Request
authentication only ever yields *self-authenticating* principals (``SHA-224(DER key) ‖ 0x02``),
so no signature, by anyone, authenticates as the escrow; and the embedded ledger refuses every
update call made as it (:data:`RESERVED_CALLERS`, checked in ``Ledger``) except through the one
handle the escrow executor claims when it starts, the way only a canister can spend its own
account. The coordinator operator therefore holds nothing that can debit an escrow account.

Each job's escrow is ``{owner = ESCROW_PRINCIPAL; subaccount = SHA-256("califusion/escrow/v1" ‖
job_id)}`` (ICRC.md). Its balance and every block touching it are public.

Memos (at most 32 bytes, the ledger's limit) say what a transfer is for, so the block log alone
tells the rules everything::

    deposit  b"cf1" ‖ kind ‖ tag                      20 bytes   kind F fund, S stake, B buy
    payment  b"cf1" ‖ kind ‖ tag ‖ batch ‖ index      32 bytes   kind P payout, X sale, R refund

``tag`` is the first 16 bytes of the job's escrow subaccount (it names the job), ``batch`` a
big-endian u64 (0 for the settlement, else the ledger index of the deposit that caused it) and
``index`` a big-endian u32: the payment's place in its batch. Every payment memo is therefore
unique to one (job, batch, recipient), which is what makes it safe to look a payment up by memo.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

from califusion.core.errors import InvalidInput
from califusion.crypto.principal import Account, Principal

ESCROW_DOMAIN = b"califusion/escrow/v1"
OPAQUE_TAG = b"\x01"
ESCROW_PRINCIPAL = Principal(hashlib.sha224(ESCROW_DOMAIN).digest() + OPAQUE_TAG)
# Principals no ordinary update call may come from (see ``Ledger.claim_reserved_caller``).
RESERVED_CALLERS = frozenset({ESCROW_PRINCIPAL})

MEMO_PREFIX = b"cf1"
TAG_BYTES = 16
DEPOSIT_MEMO_BYTES = len(MEMO_PREFIX) + 1 + TAG_BYTES
PAYMENT_MEMO_BYTES = DEPOSIT_MEMO_BYTES + 8 + 4
MAX_JOB_ID_BYTES = 64


class DepositKind(StrEnum):
    FUND = "F"  # the publisher's reward pool
    STAKE = "S"  # a trainer's stake
    BUY = "B"  # a buyer's payment for model access


class PaymentKind(StrEnum):
    PAYOUT = "P"  # the settlement: rewards, stake refunds, the publisher's remainder
    SALE = "X"  # one purchase's proceeds, split between publisher and trainers
    REFUND = "R"  # a deposit sent back to its sender (duplicate, stray, unsold)


def _check_job_id(job_id: str) -> bytes:
    raw = job_id.encode("utf-8")
    if not raw or len(raw) > MAX_JOB_ID_BYTES:
        raise InvalidInput(f"a job id is 1 to {MAX_JOB_ID_BYTES} bytes, got {len(raw)}")
    return raw


def escrow_subaccount(job_id: str) -> bytes:
    """``SHA-256("califusion/escrow/v1" ‖ job_id)``: the job's escrow subaccount."""
    return hashlib.sha256(ESCROW_DOMAIN + _check_job_id(job_id)).digest()


def escrow_account(job_id: str) -> Account:
    """The account that holds a job's reward pool, stakes and purchases."""
    return Account(ESCROW_PRINCIPAL, escrow_subaccount(job_id))


def job_tag(job_id: str) -> bytes:
    """The 16 bytes that name a job inside a memo."""
    return escrow_subaccount(job_id)[:TAG_BYTES]


def deposit_memo(job_id: str, kind: DepositKind) -> bytes:
    """The memo a publisher, trainer or buyer puts on a transfer into a job's escrow."""
    return MEMO_PREFIX + kind.value.encode() + job_tag(job_id)


def payment_memo(job_id: str, kind: PaymentKind, batch: int, index: int) -> bytes:
    """The memo of one escrow payment: unique per (job, kind, batch, index)."""
    if not 0 <= batch < 2**64 or not 0 <= index < 2**32:
        raise InvalidInput("a payment's batch is a u64 and its index a u32")
    return (
        MEMO_PREFIX
        + kind.value.encode()
        + job_tag(job_id)
        + batch.to_bytes(8, "big")
        + index.to_bytes(4, "big")
    )


@dataclass(frozen=True, slots=True)
class ParsedMemo:
    kind: str
    tag: bytes


def parse_deposit_memo(memo: bytes | None) -> ParsedMemo | None:
    """The kind and job tag of a deposit memo; None for anything else."""
    if memo is None or len(memo) != DEPOSIT_MEMO_BYTES or not memo.startswith(MEMO_PREFIX):
        return None
    kind = memo[len(MEMO_PREFIX) : len(MEMO_PREFIX) + 1].decode("latin-1")
    if kind not in {k.value for k in DepositKind}:
        return None
    return ParsedMemo(kind, memo[len(MEMO_PREFIX) + 1 :])
