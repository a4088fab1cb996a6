"""The marketplace with money, end to end: a real coordinator process that checks the ledger,
the ledger served over HTTP with the escrow executor beside it, a publisher, three trainers and
a buyer who each pay over that HTTP API as themselves.

Opening needs the pool in escrow and joining needs a stake (both refused by the coordinator
before they are there); the publisher's agent admits only staked trainers; every round is
signed into the escrow; the settlement pays by the rule; a buyer who has not paid gets nothing,
one who paid gets the model, and a second payment comes back.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file
from typer.testing import CliRunner

from califusion.agent.buyer import BuyerAgent
from califusion.agent.client import CoordinatorClient
from califusion.agent.payments_sales import ModelSeller
from califusion.agent.publisher import PublisherAgent
from califusion.agent.trainer import TrainerAgent
from califusion.cli.demo import demo_spec
from califusion.cli.demo_money import CFT, DemoBank
from califusion.cli.localserver import CoordinatorProcess
from califusion.cli.main import app
from califusion.core.errors import Conflict, PermissionDenied
from califusion.crypto.identity import Identity
from califusion.crypto.keystore import save_keystore
from califusion.ledger.escrow import Ending, split, weights
from califusion.ledger.escrow_ids import DepositKind, deposit_memo, escrow_account
from califusion.ledger.types import Ok, TransferArg
from califusion.ml import Weights
from califusion.ml.data import Dataset
from califusion.ml.partition import synthetic, train_test_split_per_device
from califusion.protocol import JobState, MemberState

pytestmark = pytest.mark.e2e
FEE = 10_000
PASSPHRASE = "a long enough passphrase"


def _cli(tmp_path: Path, server: CoordinatorProcess, *args: str, ok: bool = True) -> str:
    env = {"CALIFUSION_PASSPHRASE": PASSPHRASE, "CALIFUSION_COORDINATOR": server.url}
    result = CliRunner().invoke(app, list(args), env=env)
    assert result.exit_code == (0 if ok else 1), result.output
    return " ".join(result.output.split())


def _cli_buy_and_download(
    tmp_path: Path,
    server: CoordinatorProcess,
    job_id: str,
    buyer: Identity,
    stranger: Identity,
    final_weights: Weights,
    ledger_url: str,
) -> None:
    """`califusion model buy` does not pay twice; `model download` writes the paid model."""
    keys = {}
    for name, identity in (("buyer", buyer), ("stranger", stranger)):
        keys[name] = tmp_path / f"{name}.json"
        save_keystore(keys[name], identity, PASSPHRASE, name=name)
    shown = _cli(
        tmp_path, server, "model", "buy", job_id, "--ledger", ledger_url, "--timeout", "10",
        "--keystore", str(keys["buyer"]),
    )  # fmt: skip
    assert "paid for" in shown and "already" in shown and "not paying again" in shown
    assert "granted you the model key" in shown
    out = tmp_path / "model.safetensors"
    args = ("model", "download", job_id, "--out", str(out), "--keystore")
    _cli(tmp_path, server, *args, str(keys["buyer"]))
    written = load_file(out)
    assert all(np.array_equal(written[k], final_weights[k]) for k in final_weights)
    refused = _cli(
        tmp_path,
        server,
        *args[:-2],
        str(tmp_path / "x"),
        "--keystore",
        str(keys["stranger"]),
        ok=False,
    )
    assert "no access" in refused


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[DemoBank, CoordinatorProcess, ExitStack]]:
    bank = DemoBank(tmp_path, PASSPHRASE)
    server = CoordinatorProcess.in_folder(tmp_path, ledger_database_url=bank.url)
    with server, bank.serving(), ExitStack() as stack:  # agents pay over the ledger's HTTP API
        yield bank, server, stack
    bank.close()


def _client(stack: ExitStack, server: CoordinatorProcess, identity: Identity) -> CoordinatorClient:
    return stack.enter_context(CoordinatorClient(server.url, identity))


def test_a_funded_job_staked_trained_settled_and_sold(
    world: tuple[DemoBank, CoordinatorProcess, ExitStack], tmp_path: Path
) -> None:
    bank, server, stack = world
    spec = demo_spec(trainers=3, rounds=2, epochs=1, mode="publisher").model_copy(
        update={"min_trainers_per_round": 3, "price": 2 * CFT}
    )
    devices = synthetic(1.0, 1.0, num_devices=3, seed=3)
    train, _ = train_test_split_per_device(devices, test_fraction=0.1, seed=3)
    publisher_id, buyer_id, stranger_id = (
        Identity.generate(),
        Identity.generate(),
        Identity.generate(),
    )
    trainer_ids = [Identity.generate() for _ in train]
    bank.mint(publisher_id.principal, spec.reward_pool + CFT)
    for identity in trainer_ids:
        bank.mint(identity.principal, CFT)
    bank.mint(buyer_id.principal, 5 * CFT)

    publisher = PublisherAgent(
        _client(stack, server, publisher_id),
        tmp_path / "publisher",
        admission=bank.stake_decider(),
        payments=bank.publisher_payments(publisher_id),
    )
    publisher.client.register("publisher")
    job = publisher.create_job(spec)
    with pytest.raises(Conflict, match="no escrow terms"):
        publisher.client.transition(job.job_id, "open")  # the coordinator checks the ledger
    job = publisher.open(job.job_id)  # signs terms, funds, opens
    assert job.state == JobState.OPEN
    assert bank.status(job.job_id).funded == spec.reward_pool

    trainers = []
    for i, (identity, (x, y)) in enumerate(zip(trainer_ids, train, strict=True)):
        client = _client(stack, server, identity)
        client.register(f"trainer-{i}")
        if i == 0:
            with pytest.raises(Conflict, match="stake"):
                client.join(job.job_id, 100)  # no stake on the ledger: refused
        agent = TrainerAgent(client, Dataset(x=x[:200], y=y[:200]), seed=i)
        agent.payments = bank.trainer_payments(identity, i)
        agent.join(job.job_id)
        trainers.append(agent)
    job = publisher.admit_pending(job.job_id)
    assert all(m.state == MemberState.ADMITTED for m in job.members)
    with pytest.raises(Conflict, match="only a completed job"):
        publisher.client.offer_model(job.job_id, job.initial_model)
    before = {i.principal: bank.balance(i.principal) for i in (publisher_id, *trainer_ids)}

    publisher.start(job.job_id)
    threads = [
        threading.Thread(target=t.run, args=(job.job_id,), kwargs={"timeout": 120}, daemon=True)
        for t in trainers
    ]
    for thread in threads:
        thread.start()
    final = publisher.run(job.job_id, timeout=120)
    for thread in threads:
        thread.join(timeout=30)
    assert final.state == JobState.COMPLETED, final.state_reason

    # Settlement: each trainer's stake back and its share of the pool by verified samples.
    assert len(bank.executor.run_due()) == 3
    state = bank.executor.store.state(job.job_id)
    assert state is not None and len(state.rounds) == 2
    assert bank.status(job.job_id).ending is Ending.COMPLETED
    samples = weights(state.terms, state.rounds)
    sizes = [t.data.num_samples for t in trainers]
    assert samples == {i.principal: 2 * n for i, n in zip(trainer_ids, sizes, strict=True)}
    shares = split(spec.reward_pool, samples)
    for identity in trainer_ids:
        assert bank.balance(identity.principal) - before[identity.principal] == (
            shares[identity.principal] + spec.stake - FEE
        )
    assert bank.balance(escrow_account(job.job_id)) == 0

    # Model access: nothing without a payment; the model after one; a second one comes back.
    seller = ModelSeller(publisher, bank.executor)
    seller.offer(job.job_id)
    buyer = BuyerAgent(_client(stack, server, buyer_id), bank.ledger_for(buyer_id), bank.executor)
    stranger = BuyerAgent(_client(stack, server, stranger_id))
    stranger.client.register("stranger")
    buyer.client.register("buyer")
    with pytest.raises(PermissionDenied):
        buyer.model(job.job_id)
    assert seller.grant_paid(job.job_id) == []
    with pytest.raises(PermissionDenied):
        trainers[0].client.offer_model(job.job_id, "0" * 64)  # only the publisher sells
    block = buyer.buy(job.job_id)
    assert buyer.buy(job.job_id) == block  # the agent does not pay twice
    twice = bank.ledger_for(buyer_id).icrc1_transfer(
        TransferArg(
            to=escrow_account(job.job_id),
            amount=2 * CFT,
            memo=deposit_memo(job.job_id, DepositKind.BUY),
        )
    )
    assert isinstance(twice, Ok)  # paid again by hand, by mistake
    assert seller.grant_paid(job.job_id) == [buyer_id.principal.to_text()]
    assert seller.grant_paid(job.job_id) == []
    with pytest.raises(PermissionDenied):
        stranger.model(job.job_id)
    _, final_weights = publisher.results(job.job_id)
    bought = buyer.model(job.job_id)
    assert all(np.array_equal(bought[k], final_weights[k]) for k in final_weights)
    assert bank.ledger_url is not None
    _cli_buy_and_download(
        tmp_path, server, job.job_id, buyer_id, stranger_id, final_weights, bank.ledger_url
    )

    before_sale = {i.principal: bank.balance(i.principal) for i in (publisher_id, *trainer_ids)}
    buyer_before = bank.balance(buyer_id.principal)
    assert len(bank.executor.run_due()) == 5  # publisher, three trainers, the refund
    assert bank.balance(buyer_id.principal) - buyer_before == 2 * CFT - FEE
    assert bank.balance(publisher_id.principal) - before_sale[publisher_id.principal] == CFT - FEE
    trainer_shares = split(CFT, samples)
    for identity in trainer_ids:
        gained = bank.balance(identity.principal) - before_sale[identity.principal]
        assert gained == trainer_shares[identity.principal] - FEE
    assert bank.balance(escrow_account(job.job_id)) == 0
