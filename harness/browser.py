"""Debian's Chromium driven by Playwright (never a downloaded browser), the
steps every browser test takes (sign up, log in, open a mailed link and
confirm it), and what a page is held to while it runs (`Watched`: the
security headers on every answer of the frontend, no CSP violation, no
console error). conftest's `browser` and `page` fixtures are built on these."""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, expect, sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling home, and this
# closed network refuses every attempt.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Where a failing step leaves its screenshot.
ARTIFACTS = Path(os.environ.get("E2E_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))

SECURITY_HEADERS = {"x-content-type-options": "nosniff", "referrer-policy": "strict-origin-when-cross-origin",
                    "x-frame-options": "DENY"}
# Reported by the page itself: Chromium's console message names the directive,
# the event says what was blocked.
REPORT_CSP_VIOLATIONS = """document.addEventListener('securitypolicyviolation', (e) =>
    console.error(`CSP violation: ${e.effectiveDirective} blocked ${e.blockedURI || 'inline'}`));"""


class Watched:
    """What the browser saw of the frontend: answers without the security
    headers, CSP violations and other console errors, requests by type."""

    def __init__(self, page: Page):
        self.problems: list[str] = []
        self.requests: list[tuple[str, str, str]] = []
        page.add_init_script(REPORT_CSP_VIOLATIONS)
        page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("request", lambda r: self.requests.append((r.method, r.resource_type, r.url)))
        page.on("response", self.check_headers)

    def check_headers(self, response):
        # Documents, page data and form actions: what SvelteKit renders. The
        # hashed files under /_app/immutable are served as files by adapter-node.
        if response.request.resource_type not in ("document", "fetch"):
            return
        headers = response.headers
        missing = {k: headers.get(k) for k, v in SECURITY_HEADERS.items() if headers.get(k) != v}
        # Every HTML page has the policy (a redirect has no body to protect).
        if headers.get("content-type", "").startswith("text/html") and "frame-ancestors 'none'" not in \
                headers.get("content-security-policy", ""):
            missing["content-security-policy"] = headers.get("content-security-policy")
        if missing:
            self.problems.append(f"{response.request.method} {response.url} ({response.status}): {missing}")


@contextlib.contextmanager
def page(artifacts: Path, **context_options):
    """A page of a new Chromium; a screenshot in `artifacts` if the block fails."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = chromium.new_context(**context_options)
        opened = context.new_page()
        opened.set_default_timeout(20_000)
        try:
            yield opened
        except BaseException:
            artifacts.mkdir(parents=True, exist_ok=True)
            opened.screenshot(path=str(artifacts / "failure.png"), full_page=True)
            raise
        finally:
            chromium.close()


# networkidle: the page hydrated, and under `vite dev` no dependency
# optimisation is about to reload it (which would drop a click).
def sign_up(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/signup", wait_until="networkidle")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email").fill(f"{username}@example.com")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create account").click()


def log_in(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login", wait_until="networkidle")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def sign_up_and_log_in(page: Page, base: str, username: str, password: str, verification: str,
                       mailpit: str = "") -> None:
    """Sign up; with `verification` mandatory, open the link mailed through
    Mailpit (at `mailpit`) and confirm, else log out of the session sign-up opened; then
    log in, and /me shows the account."""
    sign_up(page, base, username, password)
    if verification == "mandatory":
        expect(page).to_have_url(re.compile(r"/login\?"))
        open_verification_link(page, mailpit_link(mailpit, f"{username}@example.com", "/verify/"))
        expect(page.get_by_test_id("verify-result")).to_contain_text("is verified")
    else:
        expect(page.get_by_test_id("me-username")).to_have_text(username)
        page.get_by_role("button", name="Log out").click()
        expect(page.get_by_role("navigation").get_by_role("link", name="Log in")).to_be_visible()
    log_in(page, base, username, password)
    expect(page.get_by_test_id("me-username")).to_have_text(username)
    page.goto(f"{base}/me")
    expect(page.get_by_test_id("me-username")).to_have_text(username)


def open_verification_link(page: Page, link: str) -> None:
    """Open a mailed /verify/<key> link and confirm: opening it verifies
    nothing (mail scanners open links too), the page's button does."""
    page.goto(link, wait_until="networkidle")
    expect(page.get_by_test_id("verify-result")).to_have_count(0)
    page.get_by_role("button", name="Verify my address").click()


def mailpit_link(mailpit: str, recipient: str, path: str, timeout: float = 30) -> str:
    """The link containing `path` in the newest mail to `recipient`, read
    through Mailpit's API at `mailpit` (e.g. http://127.0.0.1:8025)."""
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(f"{mailpit}/api/v1/messages", timeout=10) as answer:
            messages = json.load(answer)["messages"]
        mine = [m for m in messages if any(to["Address"] == recipient for to in m["To"])]
        if mine:
            with urllib.request.urlopen(f"{mailpit}/api/v1/message/{mine[0]['ID']}", timeout=10) as answer:
                text = json.load(answer)["Text"]
            (link,) = {url for url in re.findall(r"https?://\S+", text) if path in url}
            return link
        if time.monotonic() > deadline:
            raise AssertionError(f"no mail to {recipient} in Mailpit within {timeout} s: {messages}")
        time.sleep(0.5)

