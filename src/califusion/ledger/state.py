"""The ledger as a pure state machine: (read view, caller, argument, now) → (result, commit).

Nothing here touches a database or a clock. A call reads balances, allowances, the chain tip and
the deduplication index through :class:`LedgerView`, and returns a :class:`Transition`: the
reply (``Ok(block_index)`` or ``Err(error)``) and, when it succeeded, the :class:`Commit` to
write — the block to append, the new balances and allowances of what it touched, the dedup key.
The same functions therefore run on SQLite, PostgreSQL and a plain-Python model.

The rules and their order follow DFINITY's ICRC-1 ledger (``rs/ledger_suite/icrc1/ledger``
``execute_transfer_not_async`` and ``icrc2_approve_not_async``, ``ledger_canister_core``
``apply_transaction``, ``ledger_core`` ``approvals``/``balances``):

1. what the reference *traps* on raises :class:`InvalidInput` (memo over ``max_memo_length``,
   self-approval, approvals or delegated mints from the minting account, minting past the cap);
2. an amount above :data:`MAX_TOKENS` is ``InsufficientFunds`` (approve: clamped);
3. burn (``to`` is the minting account): fee must be absent or 0, ``amount ≥ min(min_burn_amount,
   balance)`` and ``amount > 0`` else ``BadBurn``; mint (``from`` is the minting account): fee
   absent or 0; otherwise a given fee must equal the ledger fee (``BadFee``);
4. with ``created_at_time``: ``TooOld`` if ``created_at_time + tx_window < now``,
   ``CreatedInFuture`` if ``created_at_time > now + permitted_drift``, ``Duplicate`` if an equal
   ``tx`` was accepted before;
5. apply: allowance (``InsufficientAllowance``) before balance (``InsufficientFunds``); approve
   charges its fee first, then checks ``expires_at > now`` (``Expired``) and
   ``expected_allowance`` (``AllowanceChanged``).
"""

from __future__ import annotations

from califusion.core.errors import InvalidInput
from califusion.crypto.principal import Account, Principal
from califusion.ledger.block_codec import block_hash, transaction_hash
from califusion.ledger.blocks import Block, Op, Transaction
from califusion.ledger.model import (
    MAX_TOKENS,
    AllowanceKey,
    ChainTip,
    Commit,
    LedgerConfig,
    LedgerView,
    StoredAllowance,
    Transition,
    current_allowance,
)
from califusion.ledger.types import (
    AllowanceChanged,
    ApproveArgs,
    ApproveError,
    BadBurn,
    BadFee,
    CreatedInFuture,
    Duplicate,
    Err,
    Expired,
    InsufficientAllowance,
    InsufficientFunds,
    Ok,
    TooOld,
    TransferArg,
    TransferError,
    TransferFromArgs,
    TransferFromError,
    check_nat64,
)

__all__ = [
    "MAX_TOKENS",
    "ChainTip",
    "Commit",
    "LedgerConfig",
    "LedgerView",
    "StoredAllowance",
    "Transition",
    "apply_approve",
    "apply_transfer",
    "apply_transfer_from",
    "current_allowance",
]


class _Scratch:
    """Reads through the view and collects the changes of one call."""

    def __init__(self, view: LedgerView, now_ns: int) -> None:
        self.view = view
        self.now_ns = now_ns
        self.supply = view.tip().total_supply
        self.balances: dict[Account, int] = {}
        self.allowances: dict[AllowanceKey, StoredAllowance | None] = {}

    def balance(self, account: Account) -> int:
        balance = self.balances.get(account)
        if balance is None:
            balance = self.balances[account] = self.view.balance_of(account)
        return balance

    def debit(self, account: Account, amount: int) -> InsufficientFunds | None:
        balance = self.balance(account)
        if balance < amount:
            return InsufficientFunds(balance)
        self.balances[account] = balance - amount
        return None

    def credit(self, account: Account, amount: int) -> None:
        self.balances[account] = self.balance(account) + amount

    def stored_allowance(self, account: Account, spender: Account) -> StoredAllowance | None:
        key = (account, spender)
        if key not in self.allowances:
            self.allowances[key] = self.view.allowance_of(account, spender)
        return self.allowances[key]

    def allowance(self, account: Account, spender: Account) -> int:
        stored = self.stored_allowance(account, spender)
        return stored.current(self.now_ns) if stored is not None else 0

    def use_allowance(self, account: Account, spender: Account, amount: int) -> None:
        stored = self.stored_allowance(account, spender)
        assert stored is not None and stored.current(self.now_ns) >= amount
        rest = stored.amount - amount
        remaining = StoredAllowance(rest, stored.expires_at, stored.arrived_at)
        self.allowances[(account, spender)] = remaining if rest else None


def _check_memo(config: LedgerConfig, memo: bytes | None) -> None:
    if memo is not None and len(memo) > config.max_memo_length:
        raise InvalidInput(
            f"the memo is {len(memo)} bytes; the ledger accepts at most {config.max_memo_length}"
        )


def _check_now(now_ns: int) -> None:
    check_nat64("now_ns", now_ns)


def _dedup(
    view: LedgerView, config: LedgerConfig, tx: Transaction, now_ns: int
) -> Err[TooOld | CreatedInFuture | Duplicate] | bytes | None:
    """``None`` (no dedup asked), the dedup key to remember, or the refusal."""
    created = tx.created_at_time
    if created is None:
        return None
    if created + config.tx_window_ns < now_ns:
        return Err(TooOld())
    if created > now_ns + config.permitted_drift_ns:
        return Err(CreatedInFuture(now_ns))
    tx_hash = transaction_hash(tx)
    duplicate_of = view.find_transaction(tx_hash)
    if duplicate_of is not None:
        return Err(Duplicate(duplicate_of))
    return tx_hash


def _commit(
    scratch: _Scratch, tx: Transaction, block_fee: int | None, dedup_hash: bytes | None
) -> Commit:
    tip = scratch.view.tip()
    block = Block(tx, scratch.now_ns, tip.last_hash, block_fee)
    return Commit(
        index=tip.length,
        block=block,
        block_hash=block_hash(block, dedup_hash),
        balances=dict(scratch.balances),
        allowances=dict(scratch.allowances),
        dedup_hash=dedup_hash,
        total_supply=scratch.supply,
    )


def _plan_transfer(
    view: LedgerView,
    config: LedgerConfig,
    from_account: Account,
    spender: Account | None,
    arg: TransferArg | TransferFromArgs,
) -> tuple[Transaction, int] | Err[TransferFromError]:
    """Classify the call (burn, mint or transfer), check fee and burn size, build ``tx``."""
    amount, fee, minting = arg.amount, arg.fee, config.minting_account
    memo, created_at_time = arg.memo, arg.created_at_time
    if amount > MAX_TOKENS:
        return Err(InsufficientFunds(view.balance_of(from_account)))
    if arg.to == minting:
        if fee is not None and fee != 0:
            return Err(BadFee(0))
        min_burn = min(config.min_burn_amount, view.balance_of(from_account))
        if amount < min_burn:
            return Err(BadBurn(min_burn))
        if amount == 0:
            return Err(BadBurn(config.min_burn_amount))
        return Transaction(
            Op.BURN,
            amount,
            from_=from_account,
            spender=spender,
            memo=memo,
            created_at_time=created_at_time,
        ), 0
    if from_account == minting:
        if spender is not None:
            raise InvalidInput("the minting account cannot delegate mints")
        if fee is not None and fee != 0:
            return Err(BadFee(0))
        return Transaction(
            Op.MINT, amount, to=arg.to, memo=memo, created_at_time=created_at_time
        ), 0
    if fee is not None and fee != config.fee:
        return Err(BadFee(config.fee))
    tx = Transaction(
        Op.XFER,
        amount,
        from_=from_account,
        to=arg.to,
        spender=spender,
        fee=fee,
        memo=memo,
        created_at_time=created_at_time,
    )
    return tx, config.fee


def _execute_transfer(
    view: LedgerView,
    config: LedgerConfig,
    now_ns: int,
    *,
    from_account: Account,
    spender: Account | None,
    arg: TransferArg | TransferFromArgs,
) -> Transition[TransferFromError]:
    _check_now(now_ns)
    _check_memo(config, arg.memo)
    plan = _plan_transfer(view, config, from_account, spender, arg)
    if isinstance(plan, Err):
        return Transition(plan)
    tx, charged = plan
    dedup = _dedup(view, config, tx, now_ns)
    if isinstance(dedup, Err):
        return Transition(dedup)

    scratch = _Scratch(view, now_ns)
    amount = tx.amount
    if tx.op == Op.MINT:
        if scratch.supply + amount > MAX_TOKENS:
            raise InvalidInput(f"minting {amount} would exceed the token cap {MAX_TOKENS}")
        scratch.credit(arg.to, amount)
        scratch.supply += amount
    else:
        # What leaves the account, and what the allowance must cover: amount + fee (a burn
        # has no fee). A spender spending from its own account needs no allowance.
        used = amount + charged
        delegate = spender if spender is not None and spender != from_account else None
        if delegate is not None:
            allowance = scratch.allowance(from_account, delegate)
            if allowance < used:
                return Transition(Err(InsufficientAllowance(allowance)))
        shortfall = scratch.debit(from_account, used)
        if shortfall is not None:
            return Transition(Err(shortfall))
        if delegate is not None:
            scratch.use_allowance(from_account, delegate, used)
        if tx.op == Op.XFER:
            scratch.credit(arg.to, amount)
        scratch.supply -= charged if tx.op == Op.XFER else amount
    block_fee = charged if tx.op == Op.XFER and tx.fee is None else None
    commit = _commit(scratch, tx, block_fee, dedup)
    return Transition(Ok(commit.index), commit)


def _narrow(transition: Transition[TransferFromError]) -> Transition[TransferError]:
    """A plain transfer has no spender, so it never fails on an allowance."""
    result = transition.result
    if isinstance(result, Err):
        error = result.error
        if isinstance(error, InsufficientAllowance):  # pragma: no cover - impossible
            raise AssertionError("icrc1_transfer cannot fail on an allowance")
        return Transition(Err(error))
    return Transition(result, transition.commit)


def apply_transfer(
    view: LedgerView, config: LedgerConfig, caller: Principal, arg: TransferArg, now_ns: int
) -> Transition[TransferError]:
    """``icrc1_transfer`` from ``{owner = caller; subaccount = arg.from_subaccount}``."""
    from_account = Account(caller, arg.from_subaccount)
    transition = _execute_transfer(
        view, config, now_ns, from_account=from_account, spender=None, arg=arg
    )
    return _narrow(transition)


def apply_transfer_from(
    view: LedgerView, config: LedgerConfig, caller: Principal, arg: TransferFromArgs, now_ns: int
) -> Transition[TransferFromError]:
    """``icrc2_transfer_from`` by ``{owner = caller; subaccount = arg.spender_subaccount}``."""
    spender = Account(caller, arg.spender_subaccount)
    return _execute_transfer(view, config, now_ns, from_account=arg.from_, spender=spender, arg=arg)


def apply_approve(
    view: LedgerView, config: LedgerConfig, caller: Principal, arg: ApproveArgs, now_ns: int
) -> Transition[ApproveError]:
    """``icrc2_approve``: charge the fee, then replace the (caller, spender) allowance."""
    _check_now(now_ns)
    from_account = Account(caller, arg.from_subaccount)
    if from_account.owner == arg.spender.owner:
        raise InvalidInput("self approval is not allowed: the spender's owner is the caller")
    if from_account == config.minting_account:
        raise InvalidInput("the minting account cannot delegate mints")
    _check_memo(config, arg.memo)
    amount = min(arg.amount, MAX_TOKENS)
    if arg.expected_allowance is not None and arg.expected_allowance > MAX_TOKENS:
        stored = view.allowance_of(from_account, arg.spender)
        current = stored.current(now_ns) if stored is not None else 0
        return Transition(Err(AllowanceChanged(current)))
    if arg.fee is not None and arg.fee != config.fee:
        return Transition(Err(BadFee(config.fee)))
    tx = Transaction(
        Op.APPROVE,
        amount,
        from_=from_account,
        spender=arg.spender,
        fee=arg.fee,
        memo=arg.memo,
        created_at_time=arg.created_at_time,
        expected_allowance=arg.expected_allowance,
        expires_at=arg.expires_at,
    )
    dedup = _dedup(view, config, tx, now_ns)
    if isinstance(dedup, Err):
        return Transition(dedup)

    scratch = _Scratch(view, now_ns)
    shortfall = scratch.debit(from_account, config.fee)
    if shortfall is not None:
        return Transition(Err(shortfall))
    if arg.expires_at is not None and arg.expires_at <= now_ns:
        return Transition(Err(Expired(now_ns)))
    current = scratch.allowance(from_account, arg.spender)
    if arg.expected_allowance is not None and arg.expected_allowance != current:
        return Transition(Err(AllowanceChanged(current)))
    key = (from_account, arg.spender)
    scratch.stored_allowance(*key)  # remember the old row so the store replaces it
    scratch.allowances[key] = StoredAllowance(amount, arg.expires_at, now_ns) if amount else None
    scratch.supply -= config.fee
    block_fee = config.fee if arg.fee is None else None
    commit = _commit(scratch, tx, block_fee, dedup)
    return Transition(Ok(commit.index), commit)
