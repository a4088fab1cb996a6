"""The embedded ledger service: the ICRC-1/2/3 methods over a :class:`LedgerStore`.

Method names and shapes are the canister's, so an HTTP layer or a real-ICP adapter can stand in
the same place. Update calls take the authenticated ``caller`` as a parameter — the owner of the
``from`` account (``icrc1_transfer``, ``icrc2_approve``) or the spender (``icrc2_transfer_from``);
it is never a field of the request. Update calls go through one writer per ledger
(:class:`~califusion.ledger.group_commit.GroupCommit`): the pure state machine
(:mod:`califusion.ledger.state`) runs against the state in memory and concurrent calls are
committed together, one transaction per batch; each reply describes a durable block. Reads
(balances, allowances, blocks) go to the database, so they see what any writer committed.

Ledger time is the injected clock in nanoseconds, never earlier than the last block's time, so
block timestamps never go backwards even if several processes' clocks disagree slightly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from califusion.core.clock import Clock
from califusion.core.errors import Conflict, InvalidInput, PermissionDenied
from califusion.crypto.identity import Identity
from califusion.crypto.principal import Account, Principal
from califusion.ledger.blocks import BLOCK_TYPE_URLS
from califusion.ledger.certificate import TipCertificate, sign_tip
from califusion.ledger.escrow_ids import RESERVED_CALLERS
from califusion.ledger.group_commit import DEFAULT_MAX_BATCH, GroupCommit
from califusion.ledger.icrc3 import Nat, Text, Value
from califusion.ledger.model import LedgerConfig, LedgerView, Transition, current_allowance
from califusion.ledger.state import apply_approve, apply_transfer, apply_transfer_from
from califusion.ledger.store import LedgerStore
from califusion.ledger.types import (
    Allowance,
    AllowanceArgs,
    ApproveArgs,
    ApproveResult,
    Err,
    Ok,
    StandardRecord,
    SupportedBlockType,
    TransferArg,
    TransferFromArgs,
    TransferFromResult,
    TransferResult,
    check_nat,
)

E = TypeVar("E")

MAX_BLOCKS_PER_REQUEST = 2000
_STANDARDS_URL = "https://github.com/dfinity/ICRC-1/tree/main/standards"


def seconds_to_ns(seconds: float) -> int:
    """Clock seconds → integer nanoseconds, via the float's shortest decimal form (exact)."""
    return int((Decimal(repr(seconds)) * 1_000_000_000).to_integral_value(ROUND_FLOOR))


@dataclass(frozen=True, slots=True)
class BlockWithId:
    id: int
    block: Value


@dataclass(frozen=True, slots=True)
class GetBlocksResult:
    """``icrc3_get_blocks`` reply; everything is local, so there are no archived blocks."""

    log_length: int
    blocks: list[BlockWithId]


class Ledger:
    """ICRC-1/2/3 ledger over a SQL store, with time from ``clock`` and tips signed by
    ``signing_key`` (a bare Ed25519 key, or the operator's identity).

    The ledger owns ``store``: :meth:`close` closes it. ``max_batch`` bounds how many update
    calls one transaction commits.
    """

    def __init__(
        self,
        store: LedgerStore,
        config: LedgerConfig,
        clock: Clock,
        signing_key: Ed25519PrivateKey | Identity,
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
    ) -> None:
        self._store = store
        self._config = config
        self._clock = clock
        self._key = signing_key
        self._writer = GroupCommit(store, config, self.now_ns, max_batch=max_batch)
        self._claimed: set[Principal] = set()  # reserved principals whose handle is out

    @property
    def config(self) -> LedgerConfig:
        return self._config

    @property
    def store(self) -> LedgerStore:
        return self._store

    @property
    def writer(self) -> GroupCommit:
        """The group-commit writer (its counters show how calls were batched)."""
        return self._writer

    @property
    def public_key(self) -> bytes:
        """The raw Ed25519 key tip certificates verify against."""
        if isinstance(self._key, Identity):
            return self._key.public().signing_public
        return self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def close(self) -> None:
        """Close the store (calls in flight finish first on their own connections)."""
        self._store.close()

    def now_ns(self) -> int:
        """The clock's time in ns (ledger time is this, or the last block's time if later)."""
        return seconds_to_ns(self._clock.now())

    # --- ICRC-1 -------------------------------------------------------------------------------

    def icrc1_name(self) -> str:
        return self._config.name

    def icrc1_symbol(self) -> str:
        return self._config.symbol

    def icrc1_decimals(self) -> int:
        return self._config.decimals

    def icrc1_fee(self) -> int:
        return self._config.fee

    def icrc1_metadata(self) -> list[tuple[str, Value]]:
        return [
            ("icrc1:decimals", Nat(self._config.decimals)),
            ("icrc1:name", Text(self._config.name)),
            ("icrc1:symbol", Text(self._config.symbol)),
            ("icrc1:fee", Nat(self._config.fee)),
            ("icrc1:max_memo_length", Nat(self._config.max_memo_length)),
        ]

    def icrc1_total_supply(self) -> int:
        with self._store.read() as reader:
            return reader.tip().total_supply

    def icrc1_minting_account(self) -> Account | None:
        return self._config.minting_account

    def icrc1_balance_of(self, account: Account) -> int:
        with self._store.read() as reader:
            return reader.balance_of(account)

    def icrc1_transfer(self, caller: Principal, arg: TransferArg) -> TransferResult:
        _refuse_reserved(caller)
        return self._update(lambda view, now: apply_transfer(view, self._config, caller, arg, now))

    def icrc1_supported_standards(self) -> list[StandardRecord]:
        return [
            StandardRecord(name, f"{_STANDARDS_URL}/{name}")
            for name in ("ICRC-1", "ICRC-2", "ICRC-3")
        ]

    # --- ICRC-2 -------------------------------------------------------------------------------

    def icrc2_approve(self, caller: Principal, arg: ApproveArgs) -> ApproveResult:
        _refuse_reserved(caller)
        return self._update(lambda view, now: apply_approve(view, self._config, caller, arg, now))

    def icrc2_allowance(self, arg: AllowanceArgs) -> Allowance:
        with self._store.read() as reader:
            stored = reader.allowance_of(arg.account, arg.spender)
            now = max(self.now_ns(), reader.tip().last_timestamp or 0)
        return current_allowance(stored, now)

    def icrc2_transfer_from(self, caller: Principal, arg: TransferFromArgs) -> TransferFromResult:
        _refuse_reserved(caller)
        return self._update(
            lambda view, now: apply_transfer_from(view, self._config, caller, arg, now)
        )

    # --- ICRC-3 -------------------------------------------------------------------------------

    def icrc3_get_blocks(self, start: int, length: int) -> GetBlocksResult:
        """Blocks ``start ..< start + length`` (at most 2000) and the current log length."""
        check_nat("start", start)
        check_nat("length", length)
        with self._store.read() as reader:
            log_length = reader.tip().length
            stored = reader.blocks(start, min(length, MAX_BLOCKS_PER_REQUEST))
        return GetBlocksResult(log_length, [BlockWithId(b.index, b.value()) for b in stored])

    def icrc3_get_tip_certificate(self) -> TipCertificate | None:
        """The last block's index and hash signed by the ledger key; ``None`` before block 0."""
        with self._store.read() as reader:
            tip = reader.tip()
        if tip.length == 0 or tip.last_hash is None:
            return None
        return sign_tip(self._key, tip.length - 1, tip.last_hash)

    def account_blocks(
        self, account: Account, *, start: int | None = None, max_results: int = 100
    ) -> list[BlockWithId]:
        """Blocks that touch ``account`` (as from, to or spender), newest first: those with an
        index below ``start`` (all when ``None``), at most ``max_results`` (≤ 2000).

        Not an ICRC method: the embedded counterpart of the ICRC index canister's
        ``get_account_transactions``, for wallets' histories.
        """
        if start is not None:
            check_nat("start", start)
        check_nat("max_results", max_results)
        limit = min(max_results, MAX_BLOCKS_PER_REQUEST)
        if limit == 0:
            return []
        with self._store.read() as reader:
            stored = reader.account_blocks(account, start, limit)
        return [BlockWithId(b.index, b.value()) for b in stored]

    def icrc3_get_archives(self) -> list[tuple[Principal, int, int]]:
        """No archives: every block stays in the store."""
        return []

    def icrc3_supported_block_types(self) -> list[SupportedBlockType]:
        return [SupportedBlockType(kind, url) for kind, url in sorted(BLOCK_TYPE_URLS.items())]

    # --- the escrow's handle ---------------------------------------------------------------

    def claim_reserved_caller(self, owner: Principal) -> ReservedCaller:
        """The only way to make update calls as a reserved principal (the escrow's, which has no
        key): one handle per ledger, claimed by the escrow executor when it starts — as only a
        canister can spend its own account. Every other call as that principal is refused."""
        if owner not in RESERVED_CALLERS:
            raise InvalidInput(f"{owner} is not a reserved principal")
        if owner in self._claimed:
            raise Conflict(f"the handle of {owner} is already held (by the escrow executor)")
        self._claimed.add(owner)
        return ReservedCaller(self, owner)

    # --- plumbing -----------------------------------------------------------------------------

    def _update(self, run: Callable[[LedgerView, int], Transition[E]]) -> Ok | Err[E]:
        return self._writer.submit(run)


def _refuse_reserved(caller: Principal) -> None:
    if caller in RESERVED_CALLERS:
        raise PermissionDenied(
            f"{caller} is the escrow's principal: only the escrow executor moves its tokens"
        )


class ReservedCaller:
    """Transfers as a reserved principal; made only by :meth:`Ledger.claim_reserved_caller`."""

    __slots__ = ("_ledger", "owner")

    def __init__(self, ledger: Ledger, owner: Principal) -> None:
        self._ledger = ledger
        self.owner = owner

    def icrc1_transfer(self, arg: TransferArg) -> TransferResult:
        config, owner = self._ledger.config, self.owner
        return self._ledger._update(lambda view, now: apply_transfer(view, config, owner, arg, now))

    def icrc2_transfer_from(self, arg: TransferFromArgs) -> TransferFromResult:
        config, owner = self._ledger.config, self.owner
        return self._ledger._update(
            lambda view, now: apply_transfer_from(view, config, owner, arg, now)
        )
