"""The ledger over HTTP: a real server, real signed requests, the JSON shapes, who may do what."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from califusion.agent.ledger_client import HttpLedgerAPI
from califusion.cli.ledger import create_ledger_app
from califusion.cli.localserver import serving
from califusion.coordinator import create_app
from califusion.core.clock import SystemClock
from califusion.core.errors import AuthenticationError, InvalidInput
from califusion.core.settings import CoordinatorSettings
from califusion.crypto.identity import Identity
from califusion.crypto.keystore import save_keystore
from califusion.crypto.principal import Account
from califusion.crypto.signing import sign_request
from califusion.ledger import (
    Allowance,
    AllowanceArgs,
    ApproveArgs,
    Err,
    InsufficientAllowance,
    InsufficientFunds,
    Ledger,
    Ok,
    TooOld,
    TransferArg,
    TransferFromArgs,
    verify_tip_certificate,
)
from califusion.ledger.api import LedgerAPI
from califusion.ledger.http_auth import public_key_header
from califusion.ledger.setup import ledger_for_coordinator, open_ledger

FEE = 10_000


@pytest.fixture
def operator() -> Identity:
    return Identity.generate()


@pytest.fixture
def ledger(operator: Identity, tmp_path: Path) -> Iterator[Ledger]:
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}", operator)
    yield ledger
    ledger.close()


@pytest.fixture
def url(ledger: Ledger) -> Iterator[str]:
    with serving(create_ledger_app(ledger)) as base_url:
        yield base_url


@pytest.fixture
def people() -> dict[str, Identity]:
    return {name: Identity.generate() for name in ("alice", "bob", "carol")}


def api(url: str, identity: Identity) -> HttpLedgerAPI:
    return HttpLedgerAPI(url, identity)


def raw(
    url: str,
    identity: Identity,
    method: str,
    path: str,
    body: Any = None,
    *,
    signed_at: float | None = None,
    nonce: str | None = None,
    key_of: Identity | None = None,
) -> httpx.Response:
    """A request signed by ``identity`` (carrying ``key_of``'s public key, by default its own)."""
    content = json.dumps(body).encode() if body is not None else b""
    when = time.time() if signed_at is None else signed_at
    headers = sign_request(identity, method, path, content, when, nonce=nonce)
    headers |= public_key_header(key_of or identity)
    headers["content-type"] = "application/json"
    return httpx.request(method, url + path, content=content, headers=headers)


def fund(url: str, operator: Identity, account: Account, amount: int) -> None:
    with api(url, operator) as minter:
        assert isinstance(minter.icrc1_transfer(TransferArg(to=account, amount=amount)), Ok)


def test_the_client_is_a_ledger_api_with_the_ledger_s_metadata(
    url: str, operator: Identity, people: dict[str, Identity], ledger: Ledger
) -> None:
    with api(url, people["alice"]) as alice:
        assert isinstance(alice, LedgerAPI)
        assert alice.caller == people["alice"].principal
        assert (alice.icrc1_name(), alice.icrc1_symbol()) == ("CaliFusion Token", "CFT")
        assert (alice.icrc1_decimals(), alice.icrc1_fee()) == (8, FEE)
        assert alice.icrc1_metadata() == ledger.icrc1_metadata()
        assert alice.icrc1_minting_account() == Account(operator.principal)
        assert alice.icrc1_supported_standards() == ledger.icrc1_supported_standards()
        assert alice.icrc1_total_supply() == 0


def test_transfers_and_allowances_end_to_end(
    url: str, operator: Identity, people: dict[str, Identity]
) -> None:
    alice_acct, bob_acct = Account(people["alice"].principal), Account(people["bob"].principal)
    carol_acct = Account(people["carol"].principal)
    fund(url, operator, alice_acct, 10**8)
    with api(url, people["alice"]) as alice, api(url, people["carol"]) as carol:
        assert alice.icrc1_transfer(TransferArg(to=bob_acct, amount=1_000, memo=b"hi")) == Ok(1)
        assert alice.icrc1_balance_of(bob_acct) == 1_000
        assert alice.icrc1_balance_of(alice_acct) == 10**8 - 1_000 - FEE
        assert alice.icrc1_total_supply() == 10**8 - FEE
        approve = ApproveArgs(spender=carol_acct, amount=50_000, expected_allowance=0)
        assert alice.icrc2_approve(approve) == Ok(2)
        allowance = carol.icrc2_allowance(AllowanceArgs(alice_acct, carol_acct))
        assert allowance == Allowance(50_000, None)
        spend = TransferFromArgs(from_=alice_acct, to=bob_acct, amount=30_000)
        assert carol.icrc2_transfer_from(spend) == Ok(3)
        assert carol.icrc2_transfer_from(spend) == Err(InsufficientAllowance(10_000))
        assert carol.icrc1_balance_of(bob_acct) == 31_000


def test_results_mirror_candid_variants(
    url: str, operator: Identity, people: dict[str, Identity]
) -> None:
    alice, bob = people["alice"], people["bob"]
    fund(url, operator, Account(alice.principal), 5)
    to_bob = {"to": {"owner": bob.principal.to_text(), "subaccount": None}}
    refused = raw(url, alice, "POST", "/ledger/v1/icrc1_transfer", to_bob | {"amount": "9"})
    assert refused.status_code == 200
    assert refused.json() == {"Err": {"InsufficientFunds": {"balance": "5"}}}
    too_old = to_bob | {"amount": "1", "created_at_time": "1"}
    assert raw(url, alice, "POST", "/ledger/v1/icrc1_transfer", too_old).json() == {
        "Err": {"TooOld": None}
    }
    fund(url, operator, Account(alice.principal), 10**6)
    accepted = raw(url, alice, "POST", "/ledger/v1/icrc1_transfer", to_bob | {"amount": "1"})
    assert accepted.json() == {"Ok": "2"}
    balance = raw(url, bob, "GET", f"/ledger/v1/icrc1_balance_of?account={bob.principal}")
    assert balance.json() == "1"
    with api(url, alice) as client:
        assert client.icrc1_transfer(TransferArg(Account(bob.principal), 10**9)) == Err(
            InsufficientFunds(10**6 + 5 - 1 - FEE)
        )
        assert client.icrc1_transfer(
            TransferArg(Account(bob.principal), 1, created_at_time=1)
        ) == Err(TooOld())


def test_nobody_spends_from_an_account_they_do_not_own(
    url: str, operator: Identity, people: dict[str, Identity]
) -> None:
    alice, bob = people["alice"], people["bob"]
    alice_acct, bob_acct = Account(alice.principal), Account(bob.principal)
    fund(url, operator, alice_acct, 10**6)
    # There is no "from" in a transfer: the body may not name one.
    smuggled = {
        "to": {"owner": str(bob.principal)},
        "amount": "1",
        "from": {"owner": str(alice.principal)},
    }
    response = raw(url, bob, "POST", "/ledger/v1/icrc1_transfer", smuggled)
    assert response.status_code == 422
    # Claiming to be alice while signing with bob's key is refused.
    claims_alice = raw(
        url, bob, "POST", "/ledger/v1/icrc1_transfer", {"to": {"owner": str(bob.principal)},
        "amount": "1"}, key_of=alice,
    )  # fmt: skip
    assert claims_alice.status_code == 401
    with api(url, bob) as client:
        spend = TransferFromArgs(from_=alice_acct, to=bob_acct, amount=1)
        assert client.icrc2_transfer_from(spend) == Err(InsufficientAllowance(0))
        # Only the minting identity mints: bob's "mint" is an ordinary transfer he cannot pay.
        assert client.icrc1_transfer(TransferArg(to=bob_acct, amount=1)) == Err(
            InsufficientFunds(0)
        )
        assert client.icrc1_balance_of(alice_acct) == 10**6  # reading is open to any signer


def test_unsigned_replayed_and_stale_requests_are_refused(
    url: str, people: dict[str, Identity]
) -> None:
    alice = people["alice"]
    path = "/ledger/v1/icrc1_total_supply"
    assert httpx.get(url + path).status_code == 401
    no_key = sign_request(alice, "GET", path, b"", time.time())
    response = httpx.get(url + path, headers=no_key)
    assert response.status_code == 401 and "X-CF-Public-Key" in response.json()["detail"]
    nonce = "ab" * 16
    assert raw(url, alice, "GET", path, nonce=nonce).status_code == 200
    replayed = raw(url, alice, "GET", path, nonce=nonce)
    assert (replayed.status_code, replayed.json()["code"]) == (401, "replayed-nonce")
    before_start = raw(url, alice, "GET", path, signed_at=time.time() - 30)
    assert (before_start.status_code, before_start.json()["code"]) == (401, "stale-request")
    late = HttpLedgerAPI(url, alice, clock=_Clock(time.time() - 3600))
    with late, pytest.raises(AuthenticationError, match="before this ledger server started"):
        late.icrc1_fee()


class _Clock:
    def __init__(self, at: float) -> None:
        self.at = at

    def now(self) -> float:
        return self.at


def test_malformed_input_is_a_422_naming_the_field(
    url: str, operator: Identity, people: dict[str, Identity]
) -> None:
    alice, bob = people["alice"], people["bob"]
    fund(url, operator, Account(alice.principal), 10**6)
    to_bob = {"to": {"owner": str(bob.principal)}}
    as_number = raw(url, alice, "POST", "/ledger/v1/icrc1_transfer", to_bob | {"amount": 5})
    assert as_number.status_code == 422 and "amount" in as_number.json()["detail"]
    bad_sub = {"to": {"owner": str(bob.principal), "subaccount": "zz"}, "amount": "1"}
    assert raw(url, alice, "POST", "/ledger/v1/icrc1_transfer", bad_sub).status_code == 422
    bad_account = raw(url, alice, "GET", "/ledger/v1/icrc1_balance_of?account=aaaaa-ab")
    assert bad_account.status_code == 422
    with api(url, alice) as client, pytest.raises(InvalidInput, match="memo"):
        client.icrc1_transfer(TransferArg(to=Account(bob.principal), amount=1, memo=b"x" * 33))


def test_blocks_history_certificate_and_verify(
    url: str, operator: Identity, people: dict[str, Identity], ledger: Ledger
) -> None:
    alice, bob = people["alice"], people["bob"]
    with api(url, bob) as client:
        assert client.icrc3_get_tip_certificate() is None
        fund(url, operator, Account(alice.principal), 10**6)
        fund(url, operator, Account(bob.principal), 10**6)
        assert client.icrc1_transfer(TransferArg(to=Account(alice.principal), amount=7)) == Ok(2)
        assert client.icrc3_get_blocks(0, 10) == ledger.icrc3_get_blocks(0, 10)
        history = client.account_blocks(Account(alice.principal))
        assert [b.id for b in history] == [2, 0]
        assert client.account_blocks(Account(alice.principal), start=2) == history[1:]
        certificate = client.icrc3_get_tip_certificate()
        assert certificate is not None and certificate.last_block_index == 2
        verify_tip_certificate(certificate, operator.public().signing_public)
        report = client.verify()
        assert report["ok"] is True and report["blocks_checked"] == "3"


def test_a_coordinator_serves_the_ledger_its_settings_name(
    tmp_path: Path, operator: Identity, people: dict[str, Identity]
) -> None:
    keystore = tmp_path / "operator.json"
    save_keystore(keystore, operator, "operator passphrase")
    settings = CoordinatorSettings(
        home=tmp_path,
        database_url=f"sqlite:///{tmp_path / 'coordinator.db'}",
        ledger_database_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        ledger_operator_keystore=keystore,
        ledger_operator_passphrase="operator passphrase",
    )
    with serving(create_app(settings)) as url:
        fund(url, operator, Account(people["alice"].principal), 10**6)
        with api(url, people["alice"]) as alice:
            assert alice.icrc1_balance_of(Account(people["alice"].principal)) == 10**6
        nonce = "cd" * 16
        path = "/ledger/v1/icrc1_fee"
        assert raw(url, people["bob"], "GET", path, nonce=nonce).status_code == 200
        assert raw(url, people["bob"], "GET", path, nonce=nonce).status_code == 401


def test_a_coordinator_without_a_ledger_operator_serves_no_ledger(tmp_path: Path) -> None:
    settings = CoordinatorSettings(
        home=tmp_path, database_url=f"sqlite:///{tmp_path / 'coordinator.db'}"
    )
    with serving(create_app(settings)) as url:
        response = raw(url, Identity.generate(), "GET", "/ledger/v1/icrc1_fee")
        assert response.status_code == 404


def test_the_operator_is_never_found_implicitly(tmp_path: Path, operator: Identity) -> None:
    """A coordinator that reads a ledger another process serves must not start serving it."""
    keystore = tmp_path / "ledger-operator.json"
    save_keystore(keystore, operator, "pass", scrypt_n=2**10)
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    reader = CoordinatorSettings(home=tmp_path, ledger_database_url=url)
    assert ledger_for_coordinator(reader, SystemClock()) is None
    without_passphrase = CoordinatorSettings(
        home=tmp_path, ledger_database_url=url, ledger_operator_keystore=keystore
    )
    with pytest.raises(InvalidInput, match="CALIFUSION_LEDGER_OPERATOR_PASSPHRASE"):
        ledger_for_coordinator(without_passphrase, SystemClock())
