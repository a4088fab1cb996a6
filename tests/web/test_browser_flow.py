"""The whole marketplace through the dashboard in a real browser, with its money.

A publisher's dashboard creates a job (first with mistakes, to see the messages beside the
fields), funds its reward pool into the escrow and opens it; two trainers' dashboards check their
data (one file is broken, and the error names its row and column), see balance, stake and fees,
stake into the escrow and join, and train in the background; the publisher's agent admits them
once the escrow shows their stakes; the publisher starts the job and watches the curves fill in
until it completes, sees the escrow pay each trainer, and downloads the final model. A third
user buys access to the model: pays into the escrow, waits for the publisher's agent to grant
the key, and downloads the weights its own agent decrypted; it cannot pay twice, and a user who
did not pay gets nothing. Every page is photographed at 1280 px and 390 px in
``test-artifacts/screenshots``.

The coordinator serves the ledger and the escrow (as `califusion coordinator serve` does by
default): every amount on these pages comes from the ledger's blocks.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, expect

from califusion.ml import from_safetensors

from .harness import Stack, shoot

pytestmark = pytest.mark.e2e

TRAINING_TIMEOUT_MS = 60_000


PROBLEMS: list[str] = []  # script errors and Content-Security-Policy violations, all pages


def _note_console(message: ConsoleMessage) -> None:
    if message.type == "error" and "Content Security Policy" in message.text:
        PROBLEMS.append(message.text)


def _signed_in(browser: Browser, url: str) -> tuple[BrowserContext, Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    page.on("console", _note_console)
    page.on("pageerror", lambda error: PROBLEMS.append(f"script error: {error}"))
    page.goto(url)
    expect(page).to_have_url(re.compile(r"/$"))  # the token is gone from the address bar
    return context, page


UNLABELLED = """() => Array.from(document.querySelectorAll("input, select, textarea"))
  .filter(el => el.type !== "hidden" && el.labels.length === 0 && !el.getAttribute("aria-label"))
  .map(el => el.name || el.id)"""


def _assert_labelled(page: Page) -> None:
    """Every form field on the page has a label."""
    assert page.evaluate(UNLABELLED) == []


def _fill_job_form(page: Page, validation: Path) -> None:
    page.get_by_label("Title").fill("Synthetic(1,1) classifier")
    page.get_by_label("Description").fill(
        "Softmax regression over 60 features and 10 classes, trained by FedAvg."
    )
    page.get_by_label("Feature columns").fill("x*60")
    page.get_by_label("Label column").fill("label")
    page.get_by_label("Classes").fill("10")
    page.get_by_label("Learning rate").fill("0.05")
    page.get_by_label("Local epochs per round").fill("2")
    page.get_by_label("Batch size").fill("10")
    page.get_by_label(re.compile(r"^Rounds")).fill("3")
    page.get_by_label("Trainers wanted").fill("2")
    page.get_by_label("Minimum trainers per round").fill("2")
    page.get_by_label("Round deadline (seconds)").fill("60")
    page.get_by_label("Reward pool").fill("10")
    page.get_by_label("Stake per trainer").fill("0.5")
    page.get_by_label("Model access price").fill("2.5")
    page.get_by_label("Validation file on this machine").fill(str(validation))


def test_publish_join_train_download(browser: Browser, stack: Stack) -> None:
    pub_ctx, pub = _signed_in(browser, stack.publisher.url)
    shoot(pub, "01-board-empty")
    pub.keyboard.press("Tab")  # keyboard users can skip the header ...
    expect(pub.locator(":focus")).to_have_text("Skip to content")
    pub.keyboard.press("Enter")
    pub.keyboard.press("Tab")  # ... and land on the page's first control
    expect(pub.locator(":focus")).to_have_text("New job")

    # create: first with mistakes, then correctly
    pub.get_by_role("link", name="New job").click()
    pub.get_by_label("Title").fill("")
    pub.get_by_label(re.compile(r"^Rounds")).fill("three")
    pub.get_by_label("Trainers wanted").fill("2")
    pub.get_by_label("Minimum trainers per round").fill("5")
    pub.get_by_label("Stake per trainer").fill("0.123456789")
    pub.get_by_role("button", name="Create job").click()
    expect(pub.locator("#error-summary")).to_be_focused()
    expect(pub.locator("#e-title")).to_have_text("give the job a title")
    expect(pub.locator("#e-rounds")).to_have_text("enter a whole number")
    expect(pub.locator("#e-min_trainers_per_round")).to_contain_text("cannot exceed")
    expect(pub.locator("#e-stake")).to_contain_text("at most 8 decimal places")
    expect(pub.locator("#e-features")).to_be_visible()
    expect(pub.get_by_label("Title")).to_have_attribute("aria-invalid", "true")
    _assert_labelled(pub)
    shoot(pub, "02-new-job-errors")
    _fill_job_form(pub, stack.data["validation"])
    pub.get_by_role("button", name="Create job").click()
    expect(pub.locator("#job-state")).to_have_text("draft")
    job_id = pub.url.rsplit("/", 1)[1]
    # opening funds the reward pool into escrow: the page says what it takes, then it is done
    expect(pub.locator(f"#funding-{job_id}")).to_contain_text("your balance is 20 CFT")
    pub.get_by_role("button", name="Open to trainers").click()
    expect(pub.locator("#job-state")).to_have_text("open")
    expect(pub.locator("#escrow-funded")).to_have_text("10 CFT")
    expect(pub.locator("#escrow-terms")).to_have_text("signed")
    expect(pub.get_by_role("button", name="Start training")).to_be_disabled()
    shoot(pub, "03-job-open")

    # trainer A: a broken file first (error by row and column), then the good one by path
    a_ctx, a = _signed_in(browser, stack.trainers[0].url)
    a.goto(stack.trainers[0].origin + "/trainer")
    expect(a.locator(f"#open-{job_id}")).to_contain_text("Synthetic(1,1) classifier")
    expect(a.locator(f"#open-{job_id}")).to_contain_text("0.5 CFT")
    shoot(a, "04-trainer-open-jobs")
    a.locator(f"#join-{job_id}").click()
    a.get_by_label("Full path of a CSV, Parquet or NPZ file").fill(str(stack.data["bad"]))
    a.get_by_role("button", name="Check data").click()
    expect(a.locator("#check-problem")).to_be_visible()
    expect(a.locator("#problem-row")).to_have_text("5")
    expect(a.locator("#problem-column")).to_have_text("x3")
    expect(a.locator("#check-problem")).to_contain_text("is not a number")
    expect(a.locator("#check-problem")).not_to_contain_text("n/a")  # values are never quoted
    shoot(a, "05-join-data-error")
    a.get_by_label("Full path of a CSV, Parquet or NPZ file").fill(str(stack.data["train-a"]))
    a.get_by_role("button", name="Check data").click()
    expect(a.locator("#check-ok")).to_contain_text("300 rows fit the schema")
    # balance, stake and fee from the ledger before confirming (20 CFT minted to each user)
    expect(a.locator("#join-balance")).to_have_text("20 CFT")
    expect(a.locator("#join-fee")).to_contain_text("0.0001 CFT")
    expect(a.locator("#confirm-stake")).to_have_text("0.5 CFT")
    expect(a.locator("#confirm-fee")).to_contain_text("0.0002 CFT")  # approve + collect
    expect(a.locator("#confirm-after")).to_have_text("19.4998 CFT")
    expect(a.locator("#confirm-stake-note")).to_contain_text("escrow collects it")
    _assert_labelled(a)
    shoot(a, "06-join-confirm")
    a.get_by_role("button", name="Confirm and join").click()
    expect(a).to_have_url(re.compile(f"/jobs/{job_id}$"))
    expect(a.locator("#escrow-stakes")).to_contain_text("1 · 0.5 CFT")  # staked on the ledger

    # trainer B uploads its Parquet file to its own local agent
    b_ctx, b = _signed_in(browser, stack.trainers[1].url)
    b.goto(stack.trainers[1].origin + f"/trainer/jobs/{job_id}/join")
    b.get_by_label("… or choose the file").set_input_files(str(stack.data["train-b"]))
    b.get_by_role("button", name="Check data").click()
    expect(b.locator("#check-ok")).to_contain_text("300 rows fit the schema")
    expect(b.locator("#confirm-balance")).to_have_text("20 CFT")
    expect(b.locator("#confirm-fee")).to_contain_text("0.0002 CFT")
    b.get_by_role("button", name="Confirm and join").click()
    expect(b).to_have_url(re.compile(f"/jobs/{job_id}$"))
    expect(b.locator("#escrow-stakes")).to_contain_text("2 · 1 CFT")

    # the publisher's agent admits both; start from the board; curves fill in live
    pub.goto(stack.publisher.origin + "/")
    card = pub.locator(f"#card-{job_id}")
    expect(card).to_contain_text("2 / 2", timeout=TRAINING_TIMEOUT_MS)
    shoot(pub, "07-board-open")
    card.get_by_role("button", name="Start training").click()
    expect(pub.locator(f"#card-{job_id}")).to_contain_text("training")
    pub.locator(f"#link-{job_id}").click()
    expect(pub.locator("#job-state")).to_have_text(
        re.compile("training|completed"), timeout=TRAINING_TIMEOUT_MS
    )
    rows = pub.locator("#rounds tbody tr")
    expect(rows.first).to_contain_text("closed", timeout=TRAINING_TIMEOUT_MS)
    expect(pub.locator("#job-state")).to_have_text("completed", timeout=TRAINING_TIMEOUT_MS)
    expect(rows).to_have_count(3)
    expect(pub.locator("#rounds-done")).to_contain_text("3 / 3 rounds")
    contributors = pub.locator("#contributors tbody tr")
    expect(contributors).to_have_count(2)
    for row in range(2):
        expect(contributors.nth(row).locator("td").nth(3)).to_have_text("3")
        expect(contributors.nth(row).locator("td").nth(2)).to_have_text("300")
    expect(pub.locator("#contributors")).to_contain_text("trainer-a")
    # both charts drew lines (uPlot puts one canvas in each) and nothing says "no data"
    expect(pub.locator("#chart-loss canvas")).to_have_count(1)
    expect(pub.locator("#chart-accuracy canvas")).to_have_count(1)
    expect(pub.locator(".chart-empty:visible")).to_have_count(0)
    legend = pub.locator("#chart-accuracy .u-legend")
    expect(legend).to_contain_text("Accuracy")
    # the escrow settles and pays: reward plus refunded stake to each trainer, read from blocks
    expect(pub.locator("#escrow-outcome")).to_have_text("completed", timeout=30_000)
    expect(pub.locator("#escrow-rounds")).to_have_text("3 / 3")
    # a secure job (the form's default): each round's signed transcript checked on this computer
    expect(pub.locator("#job-mode")).to_contain_text("secure aggregation (SecAgg+)")
    for number in (1, 2, 3):
        expect(pub.locator(f"#transcript-{number}")).to_contain_text("verified", timeout=30_000)
    payouts = pub.locator("#payouts tbody tr")
    expect(payouts.first).to_contain_text("payout", timeout=30_000)
    paid = [contributors.nth(row).locator("td.paid") for row in range(2)]
    for cell in paid:
        expect(cell).to_have_text(re.compile(r"^\d[\d.,]* CFT$"))
    amounts = {cell.inner_text() for cell in paid}
    assert len(amounts) == 1, amounts  # same samples, same rounds: the same payout
    payout = amounts.pop()
    # half the 10 CFT pool and the 0.5 CFT stake back, less ledger fees
    assert 5.0 < float(payout.removesuffix(" CFT")) <= 5.5, payout
    expect(pub.locator("#sale-state")).to_contain_text("On sale for 2.5 CFT")
    shoot(pub, "08-job-completed")

    # the publisher downloads the final model, decrypted by its own agent
    with pub.expect_download() as info:
        pub.locator("#download-model").click()
    weights, meta = from_safetensors(Path(info.value.path()).read_bytes())
    assert meta["job_id"] == job_id
    assert weights["weight"].shape == (60, 10)

    # the trainers' views: my jobs with the rounds they trained
    a.goto(stack.trainers[0].origin + "/trainer")
    mine = a.locator("#my-jobs tbody tr").first
    expect(mine).to_contain_text("completed")
    expect(mine.locator("td").nth(3)).to_have_text("3")
    expect(a.locator("#chart-earnings canvas")).to_have_count(1)
    # the escrow's payout, counted as earned (from the trainer's own ledger blocks)
    expect(mine.locator("td.earned")).to_have_text(payout)
    expect(a.locator("#chart-earnings canvas")).to_be_visible()
    expect(a.get_by_text("No payout received yet")).to_be_hidden()
    shoot(a, "09-trainer-my-jobs")
    a.goto(stack.trainers[0].origin + f"/jobs/{job_id}")
    expect(a.locator(".mine")).to_contain_text("3 round(s) trained")
    shoot(a, "10-trainer-job")
    pub.goto(stack.publisher.origin + "/")
    expect(pub.locator(f"#card-{job_id}")).to_contain_text("3 / 3")
    shoot(pub, "11-board-completed")

    _buy_model(browser, stack, job_id, b)
    for context in (pub_ctx, a_ctx, b_ctx):
        context.close()
    assert PROBLEMS == []


def _buy_model(browser: Browser, stack: Stack, job_id: str, unpaid: Page) -> None:
    """A third user buys access, waits for the key, downloads the model; no second payment,
    and a user who has not paid (trainer B, on ``unpaid``) gets nothing."""
    buyer = stack.buyer
    ctx, page = _signed_in(browser, buyer.url)
    page.get_by_role("link", name="Models").click()
    expect(page.locator(f"#model-{job_id}")).to_contain_text("2.5 CFT")
    shoot(page, "16-models")
    page.locator(f"#buy-{job_id}").click()
    expect(page).to_have_url(re.compile(f"/jobs/{job_id}/access$"))
    expect(page.locator("#buy-price")).to_have_text("2.5 CFT")
    expect(page.locator("#buy-fee")).to_have_text("0.0001 CFT")
    expect(page.locator("#buy-balance")).to_have_text("20 CFT")
    expect(page.locator("#buy-after")).to_have_text("17.4999 CFT")
    _assert_labelled(page)
    shoot(page, "17-buy-confirm")
    page.locator("#buy-button").click()
    expect(page.locator("#access-waiting, #access-granted")).to_be_visible()
    if page.locator("#access-waiting").is_visible():
        shoot(page, "18-buy-waiting")
    expect(page.locator("#access-granted")).to_be_visible(timeout=30_000)
    expect(page.locator("#buy-button")).to_have_count(0)  # paid: no second payment offered
    shoot(page, "19-buy-granted")
    with page.expect_download() as info:
        page.locator("#download-bought").click()
    weights, meta = from_safetensors(Path(info.value.path()).read_bytes())
    assert meta["job_id"] == job_id
    assert weights["weight"].shape == (60, 10)

    # a second payment, forged past the page, is refused by the agent: the balance stays
    csrf = page.locator("body").get_attribute("hx-headers")
    assert csrf is not None
    token = re.search(r'"X-CSRF-Token": "([^"]+)"', csrf)
    assert token is not None
    again = page.request.post(
        f"{buyer.origin}/jobs/{job_id}/access/buy",
        headers={"X-CSRF-Token": token.group(1), "Origin": buyer.origin},
    )
    assert again.ok, again.status
    page.goto(buyer.origin + "/wallet")
    expect(page.locator("#balances .balance").first).to_have_text("17.4999 CFT")

    # trainer B never paid: no key, no model
    refused = unpaid.request.get(
        f"{stack.trainers[1].origin}/jobs/{job_id}/access/model.safetensors"
    )
    assert refused.status == 403, refused.status
    unpaid.goto(f"{stack.trainers[1].origin}/jobs/{job_id}/access")
    expect(unpaid.locator("#buy-button")).to_be_enabled()
    ctx.close()
