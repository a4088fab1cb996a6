"""A ledger with an escrow executor on a SQLite file, and the parties of a job."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from califusion.core.clock import FakeClock
from califusion.crypto.identity import Identity
from califusion.crypto.principal import Account, Principal
from califusion.ledger import ApproveArgs, Ledger, LedgerConfig, LedgerStore, Ok, TransferArg
from califusion.ledger.escrow_executor import EscrowExecutor, Hook
from califusion.ledger.escrow_ids import DepositKind, deposit_memo, escrow_account
from califusion.ledger.escrow_terms import (
    EscrowTerms,
    RoundStatement,
    Weighting,
    sign_statement,
)

MINTER = Principal(b"\x4d" * 10)
NS = 1_000_000_000
DAY_NS = 24 * 3600 * NS
START = 1_750_000_000.0
FEE = 10_000
JOB = "job-" + "ab" * 16
CFT = 100_000_000

# Fixed keys, so principals (and with them payment order) are the same in every run.
PUBLISHER = Identity.from_private_bytes(bytes([1] * 32), bytes([101] * 32))
TRAINERS = [Identity.from_private_bytes(bytes([i] * 32), bytes([100 + i] * 32)) for i in (2, 3, 4)]
BUYER = Identity.from_private_bytes(bytes([9] * 32), bytes([109] * 32))


def open_ledger(url: str, clock: FakeClock) -> Ledger:
    config = LedgerConfig(minting_account=Account(MINTER))
    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    return Ledger(LedgerStore(url), config, clock, key)


def terms(
    *,
    reward_pool: int = 10 * CFT,
    stake: int = CFT // 10,
    price: int | None = 2 * CFT,
    rounds: int = 2,
    weighting: Weighting = Weighting.SAMPLES,
    min_participation_bps: int = 5_000,
    sale_publisher_bps: int = 5_000,
    deadline_ns: int = int(START) * NS + 7 * DAY_NS,
    job_id: str = JOB,
) -> EscrowTerms:
    return EscrowTerms(
        job_id=job_id,
        publisher=PUBLISHER.principal,
        reward_pool=reward_pool,
        stake=stake,
        price=price,
        rounds=rounds,
        deadline_ns=deadline_ns,
        weighting=weighting,
        min_participation_bps=min_participation_bps,
        sale_publisher_bps=sale_publisher_bps,
    )


def round_statement(
    number: int, contributions: dict[Identity, int], admitted: list[Identity] | None = None
) -> RoundStatement:
    admitted = admitted if admitted is not None else TRAINERS
    return RoundStatement(
        job_id=JOB,
        round=number,
        admitted=tuple(i.principal for i in admitted),
        contributions=tuple((i.principal, n) for i, n in contributions.items()),
    )


@dataclass
class Bank:
    """A ledger (at a database URL, or a SQLite file), its escrow executor, and helpers that
    act as each party."""

    where: str | Path
    clock: FakeClock = field(default_factory=lambda: FakeClock(START))
    hook: Hook | None = None

    def __post_init__(self) -> None:
        url = self.where if isinstance(self.where, str) else f"sqlite:///{self.where}"
        self.ledger = open_ledger(url, self.clock)
        self.executor = EscrowExecutor(self.ledger, hook=self.hook)

    def close(self) -> None:
        self.ledger.close()

    def mint(self, who: Identity, amount: int) -> None:
        result = self.ledger.icrc1_transfer(
            MINTER, TransferArg(to=Account(who.principal), amount=amount)
        )
        assert isinstance(result, Ok), result

    def deposit(
        self, who: Identity, amount: int, kind: DepositKind | None, job_id: str = JOB
    ) -> int:
        memo = deposit_memo(job_id, kind) if kind is not None else None
        result = self.ledger.icrc1_transfer(
            who.principal, TransferArg(to=escrow_account(job_id), amount=amount, memo=memo)
        )
        assert isinstance(result, Ok), result
        return result.block_index

    def approve_and_collect(self, who: Identity, amount: int, job_id: str = JOB) -> int:
        approved = self.ledger.icrc2_approve(
            who.principal, ApproveArgs(spender=escrow_account(job_id), amount=amount + FEE)
        )
        assert isinstance(approved, Ok), approved
        return self.executor.collect_stake(who.principal, job_id)

    def balance(self, who: Identity | Account) -> int:
        account = who if isinstance(who, Account) else Account(who.principal)
        return self.ledger.icrc1_balance_of(account)

    def register(self, escrow_terms: EscrowTerms) -> None:
        self.executor.register_terms(sign_statement(PUBLISHER, escrow_terms))

    def submit(self, statement: RoundStatement) -> None:
        self.executor.submit_statement(sign_statement(PUBLISHER, statement))
