"""The guard against a real browser: another origin's page cannot act for the signed-in user.

A page served from another port of 127.0.0.1 is the hardest case: it is the same *site* as the
dashboard, so the browser sends the SameSite=Strict session cookie along with its requests. Only
the Origin check and the CSRF token stand in the way, and both must hold.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Browser, expect

from .harness import Stack

pytestmark = pytest.mark.e2e

EVIL_PAGE = """<!doctype html><html><body>
<form id="evil" method="post" action="{target}/jobs">
  <input name="csrf_token" value="guessed">
  <input name="title" value="planted by another origin">
  <input name="features" value="x*60"><input name="label" value="label">
  <input name="n_classes" value="10"><input name="rounds" value="1">
  <button id="go">win a prize</button>
</form>
<button id="fetch">fetch</button>
<script>
document.getElementById("fetch").onclick = function () {{
  var body = new URLSearchParams({{csrf_token: "guessed", title: "planted by fetch"}});
  fetch("{target}/jobs", {{method: "POST", mode: "no-cors", credentials: "include", body: body}})
    .then(function () {{ document.title = "sent"; }}, function () {{ document.title = "sent"; }});
}};
</script>
</body></html>"""


@pytest.fixture
def evil_origin(stack: Stack) -> Iterator[str]:
    """Another origin on this machine serving a page that posts to the publisher's dashboard."""
    page = EVIL_PAGE.format(target=stack.publisher.origin).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_cross_origin_post_is_refused(browser: Browser, stack: Stack, evil_origin: str) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(stack.publisher.url)  # the user is signed in to their dashboard ...
    expect(page).to_have_url(re.compile(r"/$"))
    page.goto(evil_origin)  # ... and visits another page on this machine
    with page.expect_response(f"{stack.publisher.origin}/jobs") as posted:
        page.click("#go")
    assert posted.value.status == 403
    expect(page.locator("body")).to_contain_text("refused")
    page.goto(evil_origin)
    # a no-cors fetch: the browser hides the answer from the page (our Cross-Origin-Resource-
    # Policy makes it drop it altogether), but the request goes out; the board shows its effect
    with page.expect_request(f"{stack.publisher.origin}/jobs") as sent:
        page.click("#fetch")
    assert sent.value.method == "POST"
    expect(page).to_have_title("sent")
    page.goto(stack.publisher.origin + "/")
    expect(page.get_by_role("heading", name="Your jobs")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("planted")
    context.close()


def test_a_browser_without_the_session_is_refused(browser: Browser, stack: Stack) -> None:
    context = browser.new_context()
    page = context.new_page()
    for path in ("/", "/trainer", "/jobs/new"):
        response = page.goto(stack.publisher.origin + path)
        assert response is not None and response.status == 401
        expect(page.locator("body")).to_contain_text("Not signed in")
    response = page.goto(stack.publisher.origin + "/login?token=wrong")
    assert response is not None and response.status == 401
    context.close()


def test_the_dashboard_cannot_be_framed(browser: Browser, stack: Stack) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(stack.publisher.url)
    page.set_content(f'<iframe id="f" src="{stack.publisher.origin}/"></iframe>')
    page.wait_for_load_state()
    frame = page.frame_locator("#f")
    expect(frame.get_by_role("heading", name="Your jobs")).to_have_count(0)
    context.close()
