"""Stateful property test: random call sequences against a plain-Python model of the ledger.

The model is a second, deliberately plain reading of the rules (ICRC.md and the reference
ledger's order of checks). Hypothesis drives mints, transfers, burns, approvals and
transfer_froms with random fees, memos, created_at_times, expiries and clock advances, replays
earlier calls to hit deduplication, and checks every reply, every balance, the total supply and,
at the end, that the block log re-verifies and replays to the same state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from califusion.core.clock import FakeClock
from califusion.core.errors import InvalidInput
from califusion.crypto.principal import Account, Principal
from califusion.ledger import (
    MAX_TOKENS,
    ApproveArgs,
    Ledger,
    LedgerConfig,
    LedgerStore,
    Ok,
    TransferArg,
    TransferFromArgs,
    verify_store,
)

from .helpers import DAY_NS, DRIFT_NS, MINTER, NS
from .reference_model import ACCOUNTS, CALLERS, FEE, MINTING, SUBS, USERS, Model, Result

amounts = st.one_of(
    st.integers(min_value=0, max_value=300_000),
    st.integers(min_value=0, max_value=300_000),
    st.sampled_from([0, 1, FEE - 1, FEE, FEE + 1, 10**12, MAX_TOKENS, MAX_TOKENS + 1, 2**64]),
)
fees = st.sampled_from([None, None, None, FEE, FEE, 0, FEE + 1])
memos = st.sampled_from([None, None, None, b"", b"job-7", b"job-7", b"x" * 32, b"x" * 33])
_CAT_CHOICES: list[object] = ["none", "none", "now", "now", "start", "start"]
cat_offsets = st.sampled_from(
    [*_CAT_CHOICES, -5 * NS, -DAY_NS, -DAY_NS - 1, DRIFT_NS, DRIFT_NS + 1]
)
expiries = st.sampled_from(["none", "none", "past", "now", 1, 3600, 3600, 2**64 - 1])
expected_allowances = st.sampled_from(["none", "none", "current", "current", 0, 1, MAX_TOKENS + 1])
accounts = st.sampled_from(ACCOUNTS)
users = st.sampled_from(USERS)
approvers = st.sampled_from([*USERS, *USERS, MINTER])
subs = st.sampled_from(SUBS)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock(1_750_000_000.0)
        self.store = LedgerStore("sqlite://")
        config = LedgerConfig(minting_account=MINTING)
        self.ledger = Ledger(self.store, config, self.clock, Ed25519PrivateKey.generate())
        self.start = self.ledger.now_ns()
        self.model = Model()
        self.history: list[tuple[str, Principal, Any]] = []
        self.accepted_with_time: list[tuple[str, Principal, Any]] = []

    def _cat(self, offset: object) -> int | None:
        now = self.ledger.now_ns()
        if offset == "none":
            return None
        if offset == "now":
            return now
        if offset == "start":
            return self.start
        assert isinstance(offset, int)
        return max(now + offset, 0)

    def _call(self, kind: str, caller: Principal, arg: Any) -> None:
        """Send one call to the ledger and to the model; their replies must be equal."""
        now = self.ledger.now_ns()
        call: Callable[[Principal, Any], Result]
        if kind == "approve":
            call = self.ledger.icrc2_approve
            owner = Account(caller, arg.from_subaccount)
            expected = self.model.approve(owner, arg.spender, arg.amount, arg.expected_allowance,
                                          arg.expires_at, arg.fee, arg.memo, arg.created_at_time,
                                          now)  # fmt: skip
        else:
            if kind == "transfer":
                call = self.ledger.icrc1_transfer
                frm, spender = Account(caller, arg.from_subaccount), None
            else:
                call = self.ledger.icrc2_transfer_from
                frm, spender = arg.from_, Account(caller, arg.spender_subaccount)
            expected = self.model.transfer(frm, spender, arg.to, arg.amount, arg.fee, arg.memo,
                                           arg.created_at_time, now)  # fmt: skip
        try:
            actual: Result = call(caller, arg)
        except InvalidInput:
            actual = "reject"
        assert actual == expected, (kind, caller, arg)
        self.history.append((kind, caller, arg))
        if isinstance(actual, Ok) and arg.created_at_time is not None:
            self.accepted_with_time.append((kind, caller, arg))

    @initialize(amount=st.integers(min_value=10**6, max_value=10**9))
    def fund_everyone(self, amount: int) -> None:
        for account in ACCOUNTS[2:]:
            self._call("transfer", MINTER, TransferArg(to=account, amount=amount))

    @rule(to=accounts, amount=amounts, memo=memos, cat=cat_offsets)
    def mint(self, to: Account, amount: int, memo: bytes | None, cat: object) -> None:
        arg = TransferArg(to=to, amount=amount, memo=memo, created_at_time=self._cat(cat))
        self._call("transfer", MINTER, arg)

    @rule(
        caller=st.sampled_from(CALLERS),
        frm=subs,
        to=accounts,
        amount=amounts,
        fee=fees,
        memo=memos,
        cat=cat_offsets,
    )
    def transfer(
        self,
        caller: Principal,
        frm: bytes | None,
        to: Account,
        amount: int,
        fee: int | None,
        memo: bytes | None,
        cat: object,
    ) -> None:
        arg = TransferArg(
            to=to,
            amount=amount,
            from_subaccount=frm,
            fee=fee,
            memo=memo,
            created_at_time=self._cat(cat),
        )
        self._call("transfer", caller, arg)

    @rule(caller=users, frm=subs, amount=amounts, memo=memos)
    def burn(self, caller: Principal, frm: bytes | None, amount: int, memo: bytes | None) -> None:
        arg = TransferArg(to=MINTING, amount=amount % 200_000, from_subaccount=frm, memo=memo)
        self._call("transfer", caller, arg)

    @rule(
        caller=approvers,
        frm=subs,
        spender=accounts,
        amount=amounts,
        expected=expected_allowances,
        expires=expiries,
        fee=fees,
        memo=memos,
        cat=cat_offsets,
    )
    def approve(
        self,
        caller: Principal,
        frm: bytes | None,
        spender: Account,
        amount: int,
        expected: object,
        expires: object,
        fee: int | None,
        memo: bytes | None,
        cat: object,
    ) -> None:
        now = self.ledger.now_ns()
        owner = Account(caller, frm)
        expected_allowance = (
            None
            if expected == "none"
            else self.model.allowance(owner, spender, now)
            if expected == "current"
            else expected
        )
        expires_at = (
            None
            if expires == "none"
            else now - 1
            if expires == "past"
            else now
            if expires == "now"
            else min(now + int(expires) * NS, 2**64 - 1)  # type: ignore[call-overload]
        )
        arg = ApproveArgs(
            spender=spender,
            amount=amount,
            from_subaccount=frm,
            expected_allowance=expected_allowance,  # type: ignore[arg-type]
            expires_at=expires_at,
            fee=fee,
            memo=memo,
            created_at_time=self._cat(cat),
        )
        self._call("approve", caller, arg)

    @rule(
        caller=st.sampled_from(CALLERS),
        spender_sub=subs,
        frm=accounts,
        to=accounts,
        amount=amounts,
        fee=fees,
        memo=memos,
        cat=cat_offsets,
    )
    def transfer_from(
        self,
        caller: Principal,
        spender_sub: bytes | None,
        frm: Account,
        to: Account,
        amount: int,
        fee: int | None,
        memo: bytes | None,
        cat: object,
    ) -> None:
        arg = TransferFromArgs(
            from_=frm,
            to=to,
            amount=amount,
            spender_subaccount=spender_sub,
            fee=fee,
            memo=memo,
            created_at_time=self._cat(cat),
        )
        self._call("transfer_from", caller, arg)

    @rule(pick=st.integers(min_value=0, max_value=10**6))
    def replay(self, pick: int) -> None:
        """Send an earlier call again: a Duplicate, TooOld, or (without a time) a new block."""
        pool = self.accepted_with_time if pick % 3 else self.history
        if pool:
            self._call(*pool[pick % len(pool)])

    @rule(seconds=st.sampled_from([0.5, 1, 59, 61, 3600, 86_399, 86_401]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def state_matches(self) -> None:
        now = self.ledger.now_ns()
        with self.store.read() as reader:
            balances, supply = reader.balances(), reader.tip().total_supply
            allowances = reader.allowances()
        assert balances == {a: b for a, b in self.model.balances.items() if b}
        assert supply == self.model.supply
        live = {k: v.current(now) for k, v in allowances.items() if v.current(now)}
        model_live = {k: self.model.allowance(*k, now) for k in self.model.allowances}
        assert live == {k: v for k, v in model_live.items() if v}

    def teardown(self) -> None:
        report = verify_store(self.store)
        assert report.ok, report.summary()
        assert report.total_supply == self.model.supply
        assert report.blocks_checked == self.model.length
        assert {a: b for a, b in report.balances.items()} == {
            a: b for a, b in self.model.balances.items() if b
        }
        self.store.close()


LedgerMachine.TestCase.settings = settings(
    max_examples=50,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestLedgerModel = LedgerMachine.TestCase
