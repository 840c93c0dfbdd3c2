"""End to end, in a real browser: Chromium -> front/ -> back/ -> db/.

Debian's Chromium (never a downloaded browser), driven by Playwright, against
the stack fixture: the real PostgreSQL from the rendered db/, the migrated
backend served as its Dockerfile serves it, and the built SvelteKit app on
node. A failing step leaves a screenshot in $E2E_ARTIFACTS (default
test-artifacts/ in the repository).
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from harness.render import REPO

pytestmark = pytest.mark.full

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# Without the background-networking flags Chromium keeps calling home, and this
# closed network refuses every attempt.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(os.environ.get("E2E_ARTIFACTS", REPO / "test-artifacts"))


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    report = getattr(request.node, "report_call", None)  # set by conftest's makereport hook
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"{request.node.name}.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failing step: {shot}")
    context.close()


def sign_up(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/signup")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Email").fill(f"{username}@example.com")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create account").click()


def log_in(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_home_page_shows_the_three_tiers(stack, page):
    page.goto(stack.front_url)
    expect(page.get_by_test_id("api-status")).to_have_text("ok")
    expect(page.get_by_test_id("db-status")).to_have_text("ok")
    (count,), = stack.db.query("SELECT count(*) FROM personas_usuario", **stack.db.app)
    expect(page.get_by_test_id("user-count")).to_have_text(str(count))


def test_sign_up_log_in_and_see_me_then_the_row_is_in_the_isolated_db(stack, page):
    username, password = f"ada{uuid.uuid4().hex[:8]}", "Lovelace-1815-xyz"
    sign_up(page, stack.front_url, username, password)
    expect(page).to_have_url(re.compile(r"/me$"))
    expect(page.get_by_test_id("me-username")).to_have_text(username)

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("navigation").get_by_role("link", name="Log in")).to_be_visible()
    page.goto(f"{stack.front_url}/me")
    expect(page).to_have_url(re.compile(r"/login\?next="))

    log_in(page, stack.front_url, username, password)
    expect(page.get_by_test_id("me-username")).to_have_text(username)
    assert not page.evaluate("Object.keys(localStorage)"), "no token in localStorage"
    session = next(c for c in page.context.cookies() if c["name"] == "session")
    assert session["httpOnly"], "the session cookie is out of JavaScript's reach"

    # psql on the isolated database, as the architecture document checks it
    output = stack.db.psql(f"SELECT id, username, email FROM personas_usuario WHERE username='{username}';",
                           **stack.db.app)
    assert f"{username}@example.com" in output and "(1 row)" in output, output


def test_weak_password_shows_the_apis_message(stack, page):
    sign_up(page, stack.front_url, f"weak{uuid.uuid4().hex[:8]}", "password")
    expect(page.get_by_test_id("error-password")).to_contain_text("too common")
    expect(page).to_have_url(re.compile(r"/signup$"))


def test_staff_user_sees_the_list(stack, page):
    log_in(page, stack.front_url, stack.staff["username"], stack.staff["password"])
    page.get_by_role("link", name="Users").click()
    expect(page).to_have_url(re.compile(r"/users"))
    expect(page.get_by_test_id("user-row").first).to_be_visible()
    expect(page.get_by_test_id("user-row").filter(has_text=stack.staff["username"])).to_have_count(1)
