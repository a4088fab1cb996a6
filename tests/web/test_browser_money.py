"""The wallet and the ledger explorer in a real browser, against the stack's real ledger.

Trainer A sends tokens to trainer B from its wallet (after a mistake in each field, shown beside
the field), sees the transfer in its history, finds it in the explorer by block and by account,
and reads the chain-verification result (hash chain and the operator-signed tip). A user whose
balance cannot fund a reward pool is told so beside the open button. Pages are
photographed at 1280 px and 390 px in ``test-artifacts/screenshots``.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, expect

from .harness import Stack, shoot
from .test_browser_flow import PROBLEMS, _assert_labelled, _fill_job_form, _signed_in

pytestmark = pytest.mark.e2e


def test_wallet_transfer_and_explorer(browser: Browser, stack: Stack) -> None:
    ui_a, ui_b = stack.trainers
    b_principal = stack.principals["trainer-b"]
    context, page = _signed_in(browser, ui_a.url)
    page.get_by_role("link", name="Wallet").click()
    expect(page.locator("#balances")).to_contain_text(stack.principals["trainer-a"])
    _assert_labelled(page)
    before = page.locator("#balances .balance").first.inner_text()

    form = page.locator("#transfer-form")
    form.get_by_label("To account").fill("abc-not-an-account")
    form.get_by_label("Amount").fill("1.123456789")
    form.get_by_label("Memo (optional)").fill("thanks for the data")
    form.get_by_role("button", name="Send").click()
    expect(page.locator("#t-e-to")).to_contain_text("not an ICRC account")
    expect(page.locator("#t-e-amount")).to_contain_text("CFT has 8 decimals")
    expect(page.locator("#t-to")).to_have_attribute("aria-invalid", "true")
    form.get_by_label("To account").fill(b_principal)
    form.get_by_label("Amount").fill("5000")
    form.get_by_role("button", name="Send").click()
    expect(page.locator("#t-e-amount")).to_contain_text("more than your balance")
    shoot(page, "12-wallet-errors")
    form.get_by_label("Amount").fill("1.25")
    form.get_by_role("button", name="Send").click()
    expect(page.locator("#wallet-done")).to_contain_text("block")
    block = re.search(r"block (\d+)", page.locator("#wallet-done").inner_text())
    assert block is not None
    index = block.group(1)
    expect(page.locator("#balances .balance").first).not_to_have_text(before)
    history = page.locator("#history tbody tr").first
    expect(history).to_contain_text("−1.25 CFT")
    expect(history).to_contain_text("thanks for the data")
    shoot(page, "13-wallet")

    # the explorer: the chain verified, the block found by number and by account
    page.get_by_role("link", name="Ledger").click()
    expect(page.locator("#chain-check")).to_contain_text("Chain verified")
    expect(page.locator("#check-certificate")).to_contain_text("signed by the ledger operator")
    expect(page.locator(f"#blocks-{index}")).to_contain_text("1.25 CFT")
    shoot(page, "14-explorer")
    page.get_by_label("Block number or account").fill(index)
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#blocks tbody tr")).to_have_count(1)
    expect(page.locator(f"#blocks-{index}")).to_contain_text("thanks for the data")
    page.get_by_label("Block number or account").fill(b_principal)
    page.get_by_role("button", name="Search").click()
    expect(page.locator(f"#blocks-{index}")).to_be_visible()
    shoot(page, "15-explorer-search")
    page.get_by_label("Block number or account").fill("nobody")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#e-q")).to_contain_text("enter a block number or an ICRC account")
    _assert_labelled(page)

    # trainer B sees the tokens arrive in its own wallet
    b_context, b = _signed_in(browser, ui_b.url)
    b.goto(ui_b.origin + "/wallet")
    expect(b.locator(f"#history-{index}")).to_contain_text("+1.25 CFT")
    for one in (context, b_context):
        one.close()
    assert PROBLEMS == []


def test_opening_a_job_the_balance_cannot_fund(browser: Browser, stack: Stack) -> None:
    """Opening funds the reward pool first: short of it, the job stays a draft and the page says
    why beside the button, with the balance and the amount needed."""
    ui = stack.trainers[1]
    context, page = _signed_in(browser, ui.url)
    page.goto(ui.origin + "/jobs/new")
    _fill_job_form(page, stack.data["validation"])
    page.get_by_label("Title").fill("Too rich for me")
    page.get_by_label("Reward pool").fill("100")
    page.get_by_role("button", name="Create job").click()
    expect(page.locator("#job-state")).to_have_text("draft")
    job_id = page.url.rsplit("/", 1)[1]
    expect(page.locator(f"#funding-{job_id}")).to_contain_text("not enough")
    page.get_by_role("button", name="Open to trainers").click()
    refusal = page.locator(f"#action-error-{job_id}")
    expect(refusal).to_contain_text("not opened")
    expect(refusal).to_contain_text("needs 100.0001")
    expect(refusal).to_contain_text("balance")
    expect(page.locator("#job-state")).to_have_text("draft")
    expect(page.locator("#escrow-funded")).to_have_text("0 CFT")  # nothing moved
    shoot(page, "20-open-underfunded")
    context.close()
    assert PROBLEMS == []
