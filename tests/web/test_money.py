"""The wallet and the ledger explorer against a real ledger server, over HTTP as a browser does.

A standalone ledger (``create_ledger_app``, the app `califusion ledger serve` runs) listens on a
loopback port; the operator mints tokens to the dashboard's user over the same HTTP API. The
dashboard app is served behind its local guard, and every request carries the session cookie and,
when it changes state, the CSRF token and our Origin — the requests a real browser sends.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from califusion.agent.ledger_client import HttpLedgerAPI
from califusion.cli.ledger import create_ledger_app
from califusion.cli.localserver import serving
from califusion.crypto.identity import Identity
from califusion.crypto.principal import Account
from califusion.ledger.escrow_ids import PaymentKind, payment_memo
from califusion.ledger.setup import open_ledger
from califusion.ledger.types import AllowanceArgs, Ok, TransferArg
from califusion.web import Dashboard, DashboardConfig
from califusion.web.money import describe_memo

UNIT = 10**8  # 1 CFT


@dataclass
class Money:
    ledger_url: str
    operator: Identity
    user: Identity
    dashboard: Dashboard
    browser: httpx.Client
    csrf: str

    def post(self, path: str, data: dict[str, str], **kwargs: object) -> httpx.Response:
        headers = {"origin": self.dashboard.config.origin}
        return self.browser.post(path, data={"csrf_token": self.csrf, **data}, headers=headers)

    def balance(self, who: Identity) -> int:
        with HttpLedgerAPI(self.ledger_url, who) as api:
            return api.icrc1_balance_of(Account(who.principal))


def _dashboard(tmp: Path, user: Identity, ledger_url: str, key: bytes | None) -> Dashboard:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    sock.close()
    config = DashboardConfig(
        coordinator_url="http://127.0.0.1:9",  # never contacted by these pages
        state_dir=tmp,
        port=port,
        ledger_url=ledger_url,
        ledger_public_key=key,
    )
    return Dashboard(user, config)


@contextmanager
def _money(tmp_path: Path, *, trusted: bool = True) -> Iterator[Money]:
    operator, user = Identity.generate(), Identity.generate()
    ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}", operator)
    try:
        with serving(create_ledger_app(ledger), lifespan="off") as ledger_url:
            with HttpLedgerAPI(ledger_url, operator) as mint:
                result = mint.icrc1_transfer(TransferArg(Account(user.principal), 25 * UNIT))
                assert isinstance(result, Ok)
            key = (
                operator.public().signing_public
                if trusted
                else Identity.generate().public().signing_public
            )
            dashboard = _dashboard(tmp_path / "ui", user, ledger_url, key)
            # The dashboard must be served on the port its config names (the Host check).
            with _serve_at(dashboard) as origin, httpx.Client(base_url=origin, timeout=20) as b:
                assert b.get(f"/login?token={dashboard.sessions.launch_token}").status_code == 303
                page = b.get("/wallet")
                assert page.status_code == 200, page.text
                match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
                assert match is not None
                yield Money(ledger_url, operator, user, dashboard, b, match.group(1))
            dashboard.agent.stop()
    finally:
        ledger.close()


def _serve_at(dashboard: Dashboard) -> AbstractContextManager[str]:
    return serving(dashboard.app, port=dashboard.config.port, lifespan="off", name="dashboard")


@pytest.fixture
def money(tmp_path: Path) -> Iterator[Money]:
    with _money(tmp_path) as found:
        yield found


def _text(html: str) -> str:
    """The page's text, tags dropped and whitespace folded (what a person reads)."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_wallet_shows_balance_in_account_text_and_sends(money: Money) -> None:
    me = money.user.principal.to_text()
    page = _text(money.browser.get("/wallet").text)
    assert me in page
    assert "25 CFT" in page  # the mint, as the balance and in the history
    assert "+25 CFT" in page

    bob = Identity.generate()
    form = {"from_subaccount": "", "to": bob.principal.to_text(), "amount": "1.5", "memo": "hi"}
    form["created_at"] = str(time.time_ns())
    sent = money.post("/wallet/transfer", form)
    assert sent.status_code == 303, _text(sent.text)
    assert sent.headers["location"] == "/wallet?done=1"
    assert money.balance(bob) == 150_000_000
    fee = 10_000  # the embedded ledger's default fee
    assert money.balance(money.user) == 25 * UNIT - 150_000_000 - fee

    # The same form sent again (a double click) is the same block, not a second payment.
    again = money.post("/wallet/transfer", form)
    assert again.headers["location"] == "/wallet?done=1"
    assert money.balance(bob) == 150_000_000

    page = _text(money.browser.get("/wallet?done=1").text)
    assert "block 1" in page
    assert "23.4999 CFT" in page  # 25 − 1.5 − 0.0001
    assert "−1.5 CFT" in page
    assert "hi" in page


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("to", "not-a-principal", "not an ICRC account"),
        ("amount", "1.123456789", "CFT has 8 decimals"),
        ("amount", "-2", "is negative"),
        ("amount", "1e3", "is not a number of CFT"),
        ("amount", "25", "more than your balance of 25 CFT"),
        ("amount", "0", "enter more than 0"),
        ("memo", "x" * 33, "at most 32 bytes"),
    ],
)
def test_transfer_mistakes_are_named_beside_the_field(
    money: Money, field: str, value: str, message: str
) -> None:
    form = {"from_subaccount": "", "to": Identity.generate().principal.to_text(), "amount": "1"}
    form[field] = value
    refused = money.post("/wallet/transfer", form)
    assert refused.status_code == 422
    beside = re.search(rf'<p class="field-error" id="t-e-{field}">([^<]+)</p>', refused.text)
    assert beside is not None, _text(refused.text)
    assert message in beside.group(1).replace("&#39;", "'")
    assert money.balance(money.user) == 25 * UNIT  # nothing was sent


def test_approve_sets_an_allowance_and_mistakes_are_named(money: Money) -> None:
    spender = Identity.generate()
    bad = money.post("/wallet/approve", {"spender": "", "amount": "1", "expires_hours": "0"})
    assert bad.status_code == 422
    assert 'id="a-e-spender"' in bad.text and 'id="a-e-expires_hours"' in bad.text
    form = {"spender": spender.principal.to_text(), "amount": "2", "expires_hours": "5"}
    done = money.post("/wallet/approve", form)
    assert done.status_code == 303, _text(done.text)
    with HttpLedgerAPI(money.ledger_url, spender) as api:
        allowance = api.icrc2_allowance(
            AllowanceArgs(Account(money.user.principal), Account(spender.principal))
        )
    assert allowance.allowance == 2 * UNIT
    assert allowance.expires_at is not None


def test_a_wallet_post_without_the_csrf_token_is_refused(money: Money) -> None:
    form = {"to": Identity.generate().principal.to_text(), "amount": "1"}
    refused = money.browser.post(
        "/wallet/transfer", data=form, headers={"origin": money.dashboard.config.origin}
    )
    assert refused.status_code == 403
    assert money.balance(money.user) == 25 * UNIT


def test_explorer_lists_searches_and_verifies_the_chain(money: Money) -> None:
    to = Identity.generate().principal.to_text()
    for amount in ("1", "2"):
        form = {"to": to, "amount": amount, "from_subaccount": ""}
        assert money.post("/wallet/transfer", form).status_code == 303
    page = money.browser.get("/ledger")
    assert page.status_code == 200
    text = _text(page.text)
    assert "Chain verified" in text
    assert "signed by the ledger operator" in text
    assert re.search(r'id="check-length">3<', page.text)
    for index in range(3):
        assert f'id="blocks-{index}"' in page.text

    by_block = money.browser.get("/ledger?q=2")
    assert 'id="blocks-2"' in by_block.text and 'id="blocks-1"' not in by_block.text
    by_account = money.browser.get("/ledger", params={"q": to})
    assert 'id="blocks-1"' in by_account.text and 'id="blocks-0"' not in by_account.text
    missing = money.browser.get("/ledger?q=99")
    assert missing.status_code == 404 and "the log has 3 blocks" in _text(missing.text)
    bad = money.browser.get("/ledger?q=nobody")
    assert bad.status_code == 422 and 'id="e-q"' in bad.text


def test_explorer_says_when_the_tip_is_not_signed_by_the_trusted_key(tmp_path: Path) -> None:
    with _money(tmp_path, trusted=False) as money:
        text = _text(money.browser.get("/ledger").text)
    assert "Chain check failed" in text
    assert "signature does not verify" in text


def test_escrow_memos_are_recognised() -> None:
    job = "job-" + "ab" * 16
    info = describe_memo(payment_memo(job, PaymentKind.PAYOUT, 0, 3))
    assert info is not None and info.is_payment and info.label == "escrow payout"
    assert describe_memo(b"cf1P" + b"x") is None
    assert describe_memo(b"hello") is None
    assert describe_memo(None) is None
