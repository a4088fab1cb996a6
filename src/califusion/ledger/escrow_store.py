"""The escrow's records, and what it reads of the ledger: deposits, payments, balances.

:class:`EscrowStore` works on the ledger database's engine (the ledger store's, or a read-only
one in another process — the coordinator's admission check opens it this way). Deposits are read
from the ledger's block rows (``ledger_blocks``, indexed by ``to``), payments are found by memo
(indexed), so nothing here trusts a count the escrow kept itself.

With in-memory SQLite (tests) the engine is one shared connection: use it from one thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import Connection, Engine, insert, select, update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError

from califusion.core.errors import Conflict, Unavailable
from califusion.crypto.principal import Account, Principal
from califusion.ledger.escrow import (
    Deposit,
    Ending,
    EscrowState,
    Payment,
    Settlement,
    classify,
)
from califusion.ledger.escrow_ids import ESCROW_PRINCIPAL, escrow_account, escrow_subaccount
from califusion.ledger.escrow_schema import (
    create_escrow_schema,
    jobs_table,
    payments_table,
    statements_table,
)
from califusion.ledger.escrow_terms import (
    EscrowTerms,
    RoundStatement,
    SignedStatement,
    decode_statement,
)
from califusion.ledger.schema import balances_table, blocks_table

_DEPOSIT_KINDS = ("1xfer", "2xfer", "1mint")


@dataclass(frozen=True, slots=True)
class EscrowStatus:
    """What anyone may know about a job's escrow: terms, funding, stakes, purchases, outcome."""

    job_id: str
    account: Account
    balance: int
    terms: EscrowTerms | None
    funded: int = 0
    stakes: dict[Principal, int] = field(default_factory=dict)
    purchases: dict[Principal, int] = field(default_factory=dict)  # buyer → block index
    rounds_recorded: int = 0
    ending: Ending | None = None
    payments_made: int = 0

    def stake_of(self, trainer: Principal) -> int:
        return self.stakes.get(trainer, 0)

    def has_paid(self, buyer: Principal) -> bool:
        return buyer in self.purchases


class EscrowStore:
    """Reads and writes the escrow tables; reads the ledger's blocks and balances."""

    def __init__(self, engine: Engine, *, create: bool = True) -> None:
        self._engine = engine
        if create:
            with self._translate():
                create_escrow_schema(engine)

    @property
    def engine(self) -> Engine:
        return self._engine

    def close(self) -> None:
        """Dispose of the engine (only for a reader that opened its own, see ``escrow_api``)."""
        self._engine.dispose()

    @contextmanager
    def _translate(self) -> Iterator[None]:
        try:
            yield
        except (OperationalError, InterfaceError) as exc:
            raise Unavailable("the escrow's database is unavailable; retry later") from exc

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        with self._translate(), self._engine.begin() as conn:
            yield conn

    # --- escrow records -----------------------------------------------------------------------

    def add_terms(self, signed: SignedStatement, terms: EscrowTerms, now_ns: int) -> EscrowTerms:
        """Bind a job to ``terms``; the same terms again are fine, different ones a Conflict."""
        payload = signed.payload.decode("utf-8")
        with self._begin() as conn:
            row = conn.execute(
                select(jobs_table.c.terms).where(jobs_table.c.job_id == terms.job_id)
            ).first()
            if row is not None:
                if row.terms != payload:
                    raise Conflict(
                        f"{terms.job_id} is bound to other terms; its escrow keeps the first ones"
                    )
                return terms
            conn.execute(
                insert(jobs_table).values(
                    job_id=terms.job_id,
                    terms=payload,
                    signing_public=signed.signing_public,
                    signature=signed.signature,
                    registered_ns=now_ns,
                )
            )
        return terms

    def add_statement(
        self, job_id: str, kind: str, seq: int, signed: SignedStatement, now_ns: int
    ) -> None:
        with self._begin() as conn:
            conn.execute(
                insert(statements_table).values(
                    job_id=job_id,
                    kind=kind,
                    seq=seq,
                    payload=signed.payload.decode("utf-8"),
                    signing_public=signed.signing_public,
                    signature=signed.signature,
                    recorded_ns=now_ns,
                )
            )

    def settle(self, job_id: str, settlement: Settlement) -> Settlement:
        """Record how the job ended, once; the settlement on record afterwards."""
        with self._begin() as conn:
            conn.execute(
                update(jobs_table)
                .where(jobs_table.c.job_id == job_id, jobs_table.c.ending.is_(None))
                .values(
                    ending=settlement.ending.value,
                    cutoff=settlement.cutoff,
                    anchor_ns=settlement.anchor_ns,
                )
            )
        state = self.state(job_id)
        assert state is not None and state.settlement is not None
        return state.settlement

    def state(self, job_id: str) -> EscrowState | None:
        """The job's terms, recorded rounds and settlement (signatures were checked on entry)."""
        with self._begin() as conn:
            return _state(conn, job_id)

    def job_ids(self) -> list[str]:
        with self._begin() as conn:
            return [r.job_id for r in conn.execute(select(jobs_table.c.job_id))]

    def payments(self, job_id: str) -> dict[bytes, int]:
        """Recorded payments of a job: memo → block index."""
        with self._begin() as conn:
            return _payments(conn, job_id)

    def record_payment(self, job_id: str, payment: Payment, block_index: int, now_ns: int) -> None:
        try:
            with self._begin() as conn:
                conn.execute(
                    insert(payments_table).values(
                        memo=payment.memo,
                        job_id=job_id,
                        batch=payment.batch,
                        idx=payment.index,
                        to_owner=payment.to.owner.raw,
                        to_sub=payment.to.effective_subaccount,
                        amount=payment.amount,
                        block_index=block_index,
                        recorded_ns=now_ns,
                    )
                )
        except IntegrityError:
            pass  # recorded already: memos are unique per payment

    # --- the ledger's side ----------------------------------------------------------------------

    def deposits(self, job_id: str) -> list[Deposit]:
        """Every block that credited the job's escrow account, in order."""
        with self._begin() as conn:
            return _deposits(conn, job_id)

    def find_payment_block(self, memo: bytes) -> int | None:
        """The block of an escrow transfer carrying ``memo``, if the ledger has one."""
        c = blocks_table.c
        stmt = select(c.idx).where(c.memo == memo, c.from_owner == ESCROW_PRINCIPAL.raw)
        with self._begin() as conn:
            found = conn.execute(stmt.limit(1)).scalar_one_or_none()
        return int(found) if found is not None else None

    def balance(self, account: Account) -> int:
        with self._begin() as conn:
            return _balance(conn, account)

    def status(self, job_id: str) -> EscrowStatus:
        """Everything about a job's escrow, read in one transaction."""
        account = escrow_account(job_id)
        with self._begin() as conn:
            balance = _balance(conn, account)
            state = _state(conn, job_id)
            if state is None:
                return EscrowStatus(job_id, account, balance, None)
            deposits = _deposits(conn, job_id)
            payments_made = len(_payments(conn, job_id))
        book = classify(state.terms, deposits)
        settlement = state.settlement
        return EscrowStatus(
            job_id=job_id,
            account=account,
            balance=balance,
            terms=state.terms,
            funded=book.funded,
            stakes={p: d.amount for p, d in book.stakes.items()},
            purchases={p: d.block for p, d in book.purchases.items()},
            rounds_recorded=len(state.rounds),
            ending=settlement.ending if settlement is not None else None,
            payments_made=payments_made,
        )


def _state(conn: Connection, job_id: str) -> EscrowState | None:
    row = conn.execute(select(jobs_table).where(jobs_table.c.job_id == job_id)).first()
    if row is None:
        return None
    rounds = conn.execute(
        select(statements_table.c.payload)
        .where(statements_table.c.job_id == job_id, statements_table.c.kind == "round")
        .order_by(statements_table.c.seq)
    ).all()
    terms = decode_statement(row.terms.encode("utf-8"))
    assert isinstance(terms, EscrowTerms)
    statements: list[RoundStatement] = []
    for r in rounds:
        statement = decode_statement(r.payload.encode("utf-8"))
        assert isinstance(statement, RoundStatement)
        statements.append(statement)
    settlement = None
    if row.ending is not None:
        settlement = Settlement(Ending(row.ending), int(row.cutoff), int(row.anchor_ns))
    return EscrowState(terms, tuple(statements), settlement)


def _payments(conn: Connection, job_id: str) -> dict[bytes, int]:
    c = payments_table.c
    rows = conn.execute(select(c.memo, c.block_index).where(c.job_id == job_id))
    return {bytes(r.memo): int(r.block_index) for r in rows}


def _deposits(conn: Connection, job_id: str) -> list[Deposit]:
    c = blocks_table.c
    stmt = (
        select(c.idx, c.from_owner, c.from_sub, c.amount, c.memo, c.ts)
        .where(
            c.to_owner == ESCROW_PRINCIPAL.raw,
            c.to_sub == escrow_subaccount(job_id),
            c.kind.in_(_DEPOSIT_KINDS),
        )
        .order_by(c.idx)
    )
    return [
        Deposit(
            block=int(r.idx),
            sender=(
                Account(Principal(bytes(r.from_owner)), bytes(r.from_sub))
                if r.from_owner is not None
                else None
            ),
            amount=int(r.amount),
            memo=bytes(r.memo) if r.memo is not None else None,
            ts=int(r.ts),
        )
        for r in conn.execute(stmt)
    ]


def _balance(conn: Connection, account: Account) -> int:
    c = balances_table.c
    stmt = select(c.amount).where(
        c.owner == account.owner.raw, c.subaccount == account.effective_subaccount
    )
    amount = conn.execute(stmt).scalar_one_or_none()
    return int(amount) if amount is not None else 0
