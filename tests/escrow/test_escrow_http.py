"""The escrow over HTTP: a real ledger server running the executor, real signed clients.

A whole job's money goes through ``/escrow/v1`` and ``/ledger/v1`` only — funding, a stake by
ICRC-2 collect and one by a memo'd transfer, round statements, payouts by the rule, a sale, and
a cancelled job refunding everyone — then the requests the escrow must refuse.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from califusion.agent.escrow_client import HttpEscrowAPI
from califusion.agent.ledger_client import HttpLedgerAPI
from califusion.cli.demo import demo_spec
from califusion.cli.ledger import create_ledger_app
from califusion.cli.localserver import serving
from califusion.coordinator.admission import JoinRequest, OpenRequest, StakeAdmission
from califusion.core.errors import BadSignature, Conflict, InvalidInput, PermissionDenied
from califusion.crypto.encoding import b64e
from califusion.crypto.identity import Identity
from califusion.crypto.principal import Account
from califusion.crypto.signing import sign_request
from califusion.ledger import ApproveArgs, Ok, TransferArg
from califusion.ledger.escrow import Ending
from califusion.ledger.escrow_api import EscrowAPI
from califusion.ledger.escrow_executor import EscrowExecutor
from califusion.ledger.escrow_ids import DepositKind, deposit_memo, escrow_account
from califusion.ledger.escrow_store import EscrowStatus
from califusion.ledger.escrow_terms import (
    SIGNATURE_PREFIX,
    CloseStatement,
    EscrowTerms,
    Outcome,
    RoundStatement,
    SignedStatement,
    Weighting,
    sign_statement,
)
from califusion.ledger.http_auth import public_key_header
from califusion.ledger.service import Ledger
from califusion.ledger.setup import open_ledger
from califusion.protocol.payout import escrow_fields

FEE = 10_000
CFT = 100_000_000
NS = 1_000_000_000
START = 100 * CFT
POOL, STAKE, PRICE = 10 * CFT, CFT // 10, 2 * CFT


@pytest.fixture
def people() -> dict[str, Identity]:
    names = ("operator", "publisher", "t1", "t2", "t3", "buyer")
    return {name: Identity.generate() for name in names}


@pytest.fixture
def ledger(tmp_path: Path, people: dict[str, Identity]) -> Iterator[Ledger]:
    made = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}", people["operator"])
    yield made
    made.close()


@pytest.fixture
def url(ledger: Ledger, people: dict[str, Identity]) -> Iterator[str]:
    app = create_ledger_app(ledger, escrow=EscrowExecutor(ledger), escrow_interval_s=0.05)
    with serving(app) as base_url:
        with HttpLedgerAPI(base_url, people["operator"]) as minter:
            for name in ("publisher", "t1", "t2", "t3", "buyer"):
                to = Account(people[name].principal)
                assert isinstance(minter.icrc1_transfer(TransferArg(to=to, amount=START)), Ok)
        yield base_url


def terms_for(job_id: str, publisher: Identity, *, price: int | None = PRICE) -> EscrowTerms:
    return EscrowTerms(
        job_id=job_id,
        publisher=publisher.principal,
        reward_pool=POOL,
        stake=STAKE,
        price=price,
        rounds=2,
        deadline_ns=time.time_ns() + 7 * 24 * 3600 * NS,
    )


def wait_for(check: Callable[[], EscrowStatus], until: Callable[[EscrowStatus], bool]) -> None:
    deadline = time.monotonic() + 20
    while not until(status := check()):
        assert time.monotonic() < deadline, f"escrow did not get there: {status}"
        time.sleep(0.05)


def fund(url: str, publisher: Identity, job_id: str) -> None:
    with HttpLedgerAPI(url, publisher) as ledger:
        memo = deposit_memo(job_id, DepositKind.FUND)
        arg = TransferArg(to=escrow_account(job_id), amount=POOL, memo=memo)
        assert isinstance(ledger.icrc1_transfer(arg), Ok)


def balance(url: str, who: Identity) -> int:
    with HttpLedgerAPI(url, who) as ledger:
        return ledger.icrc1_balance_of(Account(who.principal))


def test_a_whole_job_s_money_over_http(url: str, people: dict[str, Identity]) -> None:
    pub, t1, t2, buyer = people["publisher"], people["t1"], people["t2"], people["buyer"]
    job = "job-" + "a1" * 16
    with HttpEscrowAPI(url, pub) as escrow:
        assert isinstance(escrow, EscrowAPI) and escrow.caller == pub.principal
        assert escrow.status(job).terms is None
        terms = terms_for(job, pub)
        assert escrow.register_terms(sign_statement(pub, terms)) == terms
        assert escrow.register_terms(sign_statement(pub, terms)) == terms  # idempotent
    fund(url, pub, job)

    # t1 stakes by ICRC-2: approve the job's escrow account, then the escrow collects
    with HttpLedgerAPI(url, t1) as ledger, HttpEscrowAPI(url, t1) as escrow:
        approve = ApproveArgs(spender=escrow_account(job), amount=STAKE + FEE)
        assert isinstance(ledger.icrc2_approve(approve), Ok)
        block = escrow.collect_stake(job)
        assert escrow.collect_stake(job) == block  # staked already: the same block, no debit
    # t2 stakes by a plain transfer with the stake memo
    with HttpLedgerAPI(url, t2) as ledger:
        memo = deposit_memo(job, DepositKind.STAKE)
        assert isinstance(
            ledger.icrc1_transfer(TransferArg(to=escrow_account(job), amount=STAKE, memo=memo)),
            Ok,
        )
    with HttpEscrowAPI(url, t2) as escrow:  # anyone signed may read
        status = escrow.status(job)
    assert status.terms == terms and status.funded == POOL
    assert status.stakes == {t1.principal: STAKE, t2.principal: STAKE}
    assert status.balance == POOL + 2 * STAKE and status.ending is None

    trainers = (t1.principal, t2.principal)
    contributions = ((t1.principal, 100), (t2.principal, 300))
    with HttpEscrowAPI(url, t1) as relay:  # statements carry their own signature: anyone relays
        for number in (1, 2):
            statement = RoundStatement(job, number, trainers, contributions)
            after = relay.submit_statement(sign_statement(pub, statement))
            assert after.rounds_recorded == number
        assert after.ending is Ending.COMPLETED
        wait_for(lambda: relay.status(job), lambda s: s.payments_made == 2)

    # payout rule: stakes back, the pool split 1:3 by samples; each payment pays its fee
    reward1, reward2 = POOL * 200 // 800, POOL * 600 // 800
    assert balance(url, t1) == START - FEE - (STAKE + FEE) + (STAKE + reward1 - FEE)
    assert balance(url, t2) == START - (STAKE + FEE) + (STAKE + reward2 - FEE)
    assert balance(url, pub) == START - (POOL + FEE)

    # a sale after completion: half to the publisher, half to the trainers by weight
    with HttpLedgerAPI(url, buyer) as ledger:
        memo = deposit_memo(job, DepositKind.BUY)
        arg = TransferArg(to=escrow_account(job), amount=PRICE, memo=memo)
        assert isinstance(ledger.icrc1_transfer(arg), Ok)
    with HttpEscrowAPI(url, buyer) as escrow:
        wait_for(lambda: escrow.status(job), lambda s: s.payments_made == 5)
        assert escrow.status(job).has_paid(buyer.principal)
    half = PRICE // 2
    assert balance(url, buyer) == START - PRICE - FEE
    assert balance(url, pub) == START - (POOL + FEE) + half - FEE
    assert balance(url, t1) == START + reward1 - 3 * FEE + half * 200 // 800 - FEE
    assert balance(url, t2) == START + reward2 - 2 * FEE + half * 600 // 800 - FEE


def test_cancelling_before_training_refunds_everyone(url: str, people: dict[str, Identity]) -> None:
    pub, t1 = people["publisher"], people["t1"]
    job = "job-" + "b2" * 16
    with HttpEscrowAPI(url, pub) as escrow:
        escrow.register_terms(sign_statement(pub, terms_for(job, pub)))
    fund(url, pub, job)
    with HttpLedgerAPI(url, t1) as ledger, HttpEscrowAPI(url, t1) as escrow:
        approve = ApproveArgs(spender=escrow_account(job), amount=STAKE + FEE)
        assert isinstance(ledger.icrc2_approve(approve), Ok)
        escrow.collect_stake(job)
    with HttpEscrowAPI(url, pub) as escrow:
        closed = escrow.submit_statement(
            sign_statement(pub, CloseStatement(job, Outcome.CANCELLED))
        )
        assert closed.ending is Ending.CANCELLED
        wait_for(lambda: escrow.status(job), lambda s: s.payments_made == 2)
        assert escrow.status(job).balance == 0
    assert balance(url, pub) == START - (POOL + FEE) + (POOL - FEE)
    assert balance(url, t1) == START - FEE - (STAKE + FEE) + (STAKE - FEE)


def test_only_the_caller_s_own_stake_is_collected(url: str, people: dict[str, Identity]) -> None:
    pub, t1, t3 = people["publisher"], people["t1"], people["t3"]
    job = "job-" + "c3" * 16
    with HttpEscrowAPI(url, pub) as escrow:
        escrow.register_terms(sign_statement(pub, terms_for(job, pub)))
    fund(url, pub, job)
    with HttpLedgerAPI(url, t1) as ledger:
        approve = ApproveArgs(spender=escrow_account(job), amount=STAKE + FEE)
        assert isinstance(ledger.icrc2_approve(approve), Ok)
    # t3 asks the escrow to collect: it pulls from t3's account, which approved nothing,
    # never from t1's allowance
    with HttpEscrowAPI(url, t3) as escrow, pytest.raises(Conflict, match="approve"):
        escrow.collect_stake(job)
    with HttpEscrowAPI(url, t3) as escrow:
        assert escrow.status(job).stakes == {}
    assert balance(url, t1) == START - FEE


def test_statements_not_signed_by_the_publisher_are_refused(
    url: str, people: dict[str, Identity]
) -> None:
    pub, t1 = people["publisher"], people["t1"]
    job = "job-" + "d4" * 16
    with HttpEscrowAPI(url, t1) as escrow:
        # terms naming the publisher but signed by someone else
        with pytest.raises(PermissionDenied, match="publisher"):
            escrow.register_terms(sign_statement(t1, terms_for(job, pub)))
        assert escrow.status(job).terms is None
    with HttpEscrowAPI(url, pub) as escrow:
        escrow.register_terms(sign_statement(pub, terms_for(job, pub)))
    fund(url, pub, job)
    with HttpEscrowAPI(url, t1) as escrow:
        with pytest.raises(PermissionDenied, match="signed by its publisher"):
            escrow.submit_statement(sign_statement(t1, CloseStatement(job, Outcome.CANCELLED)))
        round1 = RoundStatement(job, 1, (t1.principal,), ((t1.principal, 5),))
        good = sign_statement(pub, round1)
        forged = SignedStatement(good.payload, good.signing_public, bytes(64))
        with pytest.raises(BadSignature):
            escrow.submit_statement(forged)
        assert escrow.status(job).rounds_recorded == 0 and escrow.status(job).ending is None


def _post(url: str, who: Identity, path: str, body: Any) -> httpx.Response:
    content = json.dumps(body).encode()
    headers = sign_request(who, "POST", path, content, time.time())
    headers |= public_key_header(who) | {"content-type": "application/json"}
    return httpx.post(url + path, content=content, headers=headers)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (
            {"payload": b64e(b"{not json"), "signing_public": b64e(bytes(32)), "signature": "AA"},
            401,
        ),
        ({"payload": "not base64!", "signing_public": "AA", "signature": "AA"}, 422),
        ({"payload": "AA", "signing_public": "AA"}, 422),
        ({"payload": "AA", "signing_public": "AA", "signature": "AA", "extra": "x"}, 422),
        ({"payload": 12, "signing_public": "AA", "signature": "AA"}, 422),
    ],
)
def test_malformed_statements_are_4xx_problems(
    url: str, people: dict[str, Identity], body: dict[str, Any], status: int
) -> None:
    response = _post(url, people["publisher"], "/escrow/v1/submit_statement", body)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


def test_a_non_canonical_statement_is_refused_even_when_signed(
    url: str, people: dict[str, Identity]
) -> None:
    pub = people["publisher"]
    job = "job-" + "e5" * 16
    payload = json.dumps({"type": "close", "job_id": job, "outcome": "cancelled"}).encode()
    signed = SignedStatement(payload, pub.public().signing_public, pub.sign(b"x"))
    with HttpEscrowAPI(url, pub) as escrow, pytest.raises((BadSignature, InvalidInput)):
        escrow.submit_statement(signed)

    good_sig = SignedStatement(
        payload, pub.public().signing_public, pub.sign(SIGNATURE_PREFIX + payload)
    )
    with HttpEscrowAPI(url, pub) as escrow, pytest.raises(InvalidInput, match="canonical"):
        escrow.submit_statement(good_sig)


def test_requests_must_be_signed_and_inputs_bounded(url: str, people: dict[str, Identity]) -> None:
    assert httpx.get(url + "/escrow/v1/status?job_id=job-1").status_code == 401
    collect = _post(url, people["t1"], "/escrow/v1/collect_stake", {"job_id": "x" * 65})
    assert collect.status_code == 422
    sub = _post(
        url, people["t1"], "/escrow/v1/collect_stake", {"job_id": "j", "from_subaccount": "zz"}
    )
    assert sub.status_code == 422
    unknown = _post(url, people["t1"], "/escrow/v1/collect_stake", {"job_id": "job-unknown"})
    assert unknown.status_code == 404


def test_a_coordinator_admission_reads_a_standalone_escrow_over_http(
    url: str, people: dict[str, Identity]
) -> None:
    """What `coordinator serve --ledger-url` wires: StakeAdmission over HttpEscrowAPI."""
    pub, t1 = people["publisher"], people["t1"]
    job = "job-" + "f6" * 16
    spec = demo_spec(trainers=2, rounds=2, epochs=1)
    fields = escrow_fields(spec, pub.principal.to_text())
    terms = EscrowTerms(
        job_id=job,
        publisher=pub.principal,
        reward_pool=spec.reward_pool,
        stake=spec.stake,
        price=spec.price,
        rounds=spec.rounds,
        deadline_ns=time.time_ns() + 7 * 24 * 3600 * NS,
        weighting=Weighting(spec.payout.weighting),
        min_participation_bps=int(str(fields["min_participation_bps"])),
        sale_publisher_bps=int(str(fields["sale_publisher_bps"])),
    )
    with HttpEscrowAPI(url, Identity.generate()) as reader:
        admission = StakeAdmission(reader)
        opening = OpenRequest(job, spec, pub.principal.to_text())
        with pytest.raises(Conflict, match="no escrow terms"):
            admission.review_open(opening)
        with HttpEscrowAPI(url, pub) as escrow:
            escrow.register_terms(sign_statement(pub, terms))
        with pytest.raises(Conflict, match="must be in escrow"):
            admission.review_open(opening)
        with HttpLedgerAPI(url, pub) as ledger:
            memo = deposit_memo(job, DepositKind.FUND)
            arg = TransferArg(to=escrow_account(job), amount=spec.reward_pool, memo=memo)
            assert isinstance(ledger.icrc1_transfer(arg), Ok)
        admission.review_open(opening)
        joining = JoinRequest(job, spec, pub.principal.to_text(), t1.principal.to_text(), 10, 0, 0)
        with pytest.raises(Conflict, match="stake"):
            admission.review(joining)
        with HttpLedgerAPI(url, t1) as ledger, HttpEscrowAPI(url, t1) as escrow:
            approve = ApproveArgs(spender=escrow_account(job), amount=spec.stake + FEE)
            assert isinstance(ledger.icrc2_approve(approve), Ok)
            escrow.collect_stake(job)
        admission.review(joining)
