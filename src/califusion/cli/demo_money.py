"""The demo's money: the ledger service with its escrow executor, and the balances table.

The ledger lives in a SQLite file of the run folder, run by a *ledger operator* identity (its
account mints). The demo's process is the ledger side: it serves the ledger over HTTP
(``/ledger/v1``, :func:`califusion.cli.ledger.create_ledger_app`) from one writer, and runs the
escrow executor beside it — the only holder of the handle that moves escrow funds. The agents
pay as themselves over that HTTP API (:class:`~califusion.agent.ledger_client.HttpLedgerAPI`,
every call signed) and reach the escrow in-process
(:class:`~califusion.ledger.escrow_api.EmbeddedEscrowAPI`). The coordinator, another process,
only reads the ledger's database: to refuse opening an unfunded job and joins without a stake.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from pathlib import Path

from rich.table import Table

from califusion.agent.admission import StakeDecider
from califusion.agent.buyer import BuyerAgent
from califusion.agent.client import CoordinatorClient
from califusion.agent.ledger_client import HttpLedgerAPI
from califusion.agent.payments import PublisherPayments, TrainerPayments
from califusion.agent.payments_sales import ModelSeller
from califusion.agent.publisher import PublisherAgent
from califusion.cli.ledger import create_ledger_app
from califusion.cli.localserver import serving
from califusion.core.errors import Unavailable
from califusion.crypto.identity import Identity
from califusion.crypto.keystore import save_keystore
from califusion.crypto.principal import Account, Principal
from califusion.ledger import Ok, TransferArg
from califusion.ledger.api import EmbeddedLedgerAPI, LedgerAPI
from califusion.ledger.escrow_api import EmbeddedEscrowAPI
from califusion.ledger.escrow_executor import EscrowExecutor
from califusion.ledger.escrow_ids import escrow_account
from califusion.ledger.escrow_store import EscrowStatus
from califusion.ledger.setup import open_ledger
from califusion.ml import Weights
from califusion.protocol.payout import format_tokens

CFT = 100_000_000


class DemoBank:
    """The embedded ledger in ``folder``, its operator (keystore beside it) and escrow executor.

    Agents call the ledger over HTTP while :meth:`serving`, in-process otherwise.
    """

    def __init__(self, folder: Path, passphrase: str) -> None:
        self.url = f"sqlite:///{folder / 'ledger.db'}"
        self.operator = Identity.generate()
        # under keys/, not at the coordinator's default operator path: in the demo this process
        # runs the ledger, and the coordinator only reads it to check funding and stakes
        self.operator_keystore = folder / "keys" / "ledger-operator.json"
        save_keystore(self.operator_keystore, self.operator, passphrase, name="ledger operator")
        self.ledger = open_ledger(self.url, self.operator)
        self.executor = EscrowExecutor(self.ledger)
        self.ledger_url: str | None = None
        self._clients: list[HttpLedgerAPI] = []

    @contextlib.contextmanager
    def serving(self) -> Iterator[str]:
        """Serve the ledger over HTTP on a free local port; agents pay there meanwhile."""
        # the escrow's routes too (for the CLI's `model buy`), without the payment thread: the
        # demo runs the executor's payments itself, when it wants to show them
        api = create_ledger_app(self.ledger, escrow=self.executor, escrow_interval_s=None)
        with serving(api, name="demo ledger") as url:
            self.ledger_url = url
            try:
                yield url
            finally:
                for client in self._clients:
                    client.close()
                self.ledger_url = None

    def close(self) -> None:
        self.ledger.close()

    def mint(self, to: Principal, amount: int) -> None:
        result = self.ledger.icrc1_transfer(
            self.operator.principal, TransferArg(to=Account(to), amount=amount)
        )
        if not isinstance(result, Ok):
            raise Unavailable(f"minting failed: {result.error}")

    def balance(self, owner: Principal | Account) -> int:
        account = owner if isinstance(owner, Account) else Account(owner)
        return self.ledger.icrc1_balance_of(account)

    def ledger_for(self, identity: Identity) -> LedgerAPI:
        """The ledger as ``identity`` sees it: over HTTP once served, else in-process."""
        if self.ledger_url is None:
            return EmbeddedLedgerAPI(self.ledger, identity.principal)
        client = HttpLedgerAPI(self.ledger_url, identity)
        self._clients.append(client)
        return client

    def escrow_for(self, identity: Identity) -> EmbeddedEscrowAPI:
        return EmbeddedEscrowAPI(self.executor, identity.principal)

    def publisher_payments(self, identity: Identity) -> PublisherPayments:
        return PublisherPayments(identity, self.ledger_for(identity), self.escrow_for(identity))

    def trainer_payments(self, identity: Identity, index: int) -> TrainerPayments:
        """Even trainers stake by ICRC-2 approve + collect, odd ones by a memo'd transfer."""
        ledger, escrow = self.ledger_for(identity), self.escrow_for(identity)
        if index % 2 == 0:
            return TrainerPayments(ledger, escrow, "approve")
        return TrainerPayments(ledger, escrow, "transfer")

    def stake_decider(self) -> StakeDecider:
        return StakeDecider(self.executor)

    def status(self, job_id: str) -> EscrowStatus:
        return self.executor.status(job_id)

    def sell_to(
        self, publisher: PublisherAgent, buyer: CoordinatorClient, job_id: str
    ) -> tuple[int, Weights]:
        """Offer the model, have ``buyer`` pay, deliver the key: the purchase's block and the
        model as the buyer decrypted it. The proceeds are paid by the executor's next run."""
        seller = ModelSeller(publisher, self.executor)
        seller.offer(job_id)
        agent = BuyerAgent(buyer, self.ledger_for(buyer.identity), self.executor)
        block = agent.buy(job_id)
        seller.grant_paid(job_id)
        return block, agent.model(job_id)


def balances_table(
    rows: Sequence[tuple[str, Principal | Account]],
    before: dict[str, int],
    after: dict[str, int],
    title: str = "balances",
) -> Table:
    """One row per party: before, after and the change, in CFT with 8 decimals."""
    table = Table("party", "account", "before", "after", "change", title=f"{title} (CFT)")
    for column in table.columns[2:]:
        column.justify = "right"
    for name, who in rows:
        text = who.to_text()
        change = after[name] - before[name]
        table.add_row(
            name,
            text[:11] + "…",
            format_tokens(before[name], symbol=""),
            format_tokens(after[name], symbol=""),
            ("+" if change > 0 else "") + format_tokens(change, symbol=""),
        )
    return table


def snapshot(bank: DemoBank, rows: Sequence[tuple[str, Principal | Account]]) -> dict[str, int]:
    return {name: bank.balance(who) for name, who in rows}


def escrow_row(job_id: str) -> tuple[str, Account]:
    return ("escrow", escrow_account(job_id))
