"""End to end, in a real browser: Chromium -> front/ -> back/ -> db/.

Debian's Chromium (never a downloaded browser), driven by Playwright, against
the stack fixture: the real PostgreSQL from the rendered db/, the migrated
backend served as its Dockerfile serves it, and the built SvelteKit app on
node. A failing step leaves a screenshot in $E2E_ARTIFACTS (default
test-artifacts/ in the repository).

Every test also holds the app to its security policy: every answer of the
frontend the browser loads (documents, page data, form actions) carries the
security headers, and the browser reports no Content-Security-Policy
violation, while the pages hydrate and the flows work.

The generated project's own Playwright journeys (front/e2e, `make e2e`) run
here too, with its playwright.config.ts: giga's against the same stack, the
other examples' (other verification answers) against a stack of their own.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from harness import node
from harness.browser import CHROMIUM, CHROMIUM_ARGS, log_in, open_verification_link, sign_up
from harness.answers import recorded
from harness.mail import mailpit_api, smtp_server
from harness.render import EXAMPLES, REPO, example_answers
from harness.stack import running

pytestmark = pytest.mark.full

ARTIFACTS = Path(os.environ.get("E2E_ARTIFACTS", REPO / "test-artifacts"))


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


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


@pytest.fixture
def context_options() -> dict:
    """Playwright's browser context options; a module may override them."""
    return {}


@pytest.fixture
def page(browser, request, context_options):
    context = browser.new_context(**context_options)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.watched = Watched(page)
    yield page
    report = getattr(request.node, "report_call", None)  # set by conftest's makereport hook
    if report is not None and report.failed:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"{request.node.name}.png"
        page.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failing step: {shot}")
    context.close()
    if report is not None and report.passed:
        assert not page.watched.problems, "\n".join(page.watched.problems)


def test_home_page_shows_the_three_tiers(stack, page):
    page.goto(stack.front_url)
    expect(page.get_by_test_id("api-status")).to_have_text("ok")
    expect(page.get_by_test_id("db-status")).to_have_text("ok")
    expect(page.get_by_test_id("system-state")).to_have_text("All systems operational")


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

    # psql on the isolated database, as docs/architecture.md checks it
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


def hydrated_flows(page: Page, base: str) -> None:
    """Client-side navigation and an enhanced form post: both need the app's
    scripts to have run, which a CSP without the right nonce would stop."""
    page.goto(base)
    expect(page.get_by_test_id("api-status")).to_have_text("ok")
    page.wait_for_load_state("networkidle")  # hydrated: the scripts have all loaded and run
    before = len(page.watched.requests)
    page.get_by_role("navigation").get_by_role("link", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/login$"))
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("wrong-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("error-form")).to_contain_text("Unable to log in")
    after = page.watched.requests[before:]
    assert not [r for r in after if r[1] == "document"], f"a full page load happened: {after}"
    assert ("POST", "fetch") in {(method, kind) for method, kind, _ in after}, after
    # The route announcer, hidden by an inline style attribute the CSP allows.
    expect(page.locator("#svelte-announcer")).to_be_attached()
    assert page.locator("#svelte-announcer").bounding_box()["width"] <= 1


def test_pages_hydrate_under_the_content_security_policy(stack, page):
    hydrated_flows(page, stack.front_url)


def test_vite_dev_serves_the_same_policy_without_violations(stack, front_installed, page, tmp_path):
    """`vite dev` (the dev image's server) injects styles and a websocket
    client: it must work under the same CSP."""
    with node.serve_dev(front_installed, tmp_path / "front", stack.api_url) as base:
        response = page.goto(base)
        policy = response.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self' 'nonce-" in policy, policy
        hydrated_flows(page, base)


# -- account flows, with the mail the backend sends to the SMTP server (conftest: smtp)
def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("navigation").get_by_role("link", name="Log in")).to_be_visible()


def test_sign_up_verify_the_address_by_mail_then_log_in(stack, smtp, page):
    username, password = f"vera{uuid.uuid4().hex[:8]}", "Verified-1815-xyz"
    sign_up(page, stack.front_url, username, password)
    # optional verification (giga's answer): logged in at once, the address shown unverified
    expect(page.get_by_test_id("me-email-state")).to_have_text("(not verified)")
    log_out(page)

    mail = smtp.wait_for(f"{username}@example.com", "Verify your email address")
    assert str(mail["From"]) == recorded(stack.backend.project)["admin_email"]
    link = smtp.link(mail, stack.front_url)
    assert re.fullmatch(rf"{re.escape(stack.front_url)}/verify/\S+", link), link
    # opened, as a mail scanner or a link preview would, the link verifies nothing
    page.goto(link, wait_until="networkidle")
    expect(page.get_by_role("button", name="Verify my address")).to_be_visible()
    log_in(page, stack.front_url, username, password)
    expect(page.get_by_test_id("me-email-state")).to_have_text("(not verified)")
    log_out(page)

    open_verification_link(page, link)
    expect(page.get_by_test_id("verify-result")).to_have_text(f"Your email address {username}@example.com is verified.")

    log_in(page, stack.front_url, username, password)
    expect(page.get_by_test_id("me-email-state")).to_have_text("(verified)")
    # the link worked once
    open_verification_link(page, link)
    expect(page.get_by_test_id("verify-result")).to_have_text(
        "This verification link is invalid, already used or expired. Ask for a new one.")


def request_reset(page: Page, base: str, email: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Send the link").click()
    expect(page.get_by_role("status")).to_contain_text("If an account uses this address")


def test_forgot_password_reset_by_mail_then_only_the_new_password_works(stack, smtp, page):
    username, old, new = f"rita{uuid.uuid4().hex[:8]}", "Forgotten-1815-xyz", "Rem3mbered-at-last"
    sign_up(page, stack.front_url, username, old)
    expect(page.get_by_test_id("me-username")).to_have_text(username)
    log_out(page)

    # an address nobody uses gets the same page, and no mail
    before = len(smtp.messages)
    request_reset(page, stack.front_url, f"nobody-{username}@example.com")
    request_reset(page, stack.front_url, f"{username}@example.com")
    mail = smtp.wait_for(f"{username}@example.com", "Reset your password")
    assert [recipients for recipients, _ in smtp.messages[before:]] == [[f"{username}@example.com"]]
    link = smtp.link(mail, stack.front_url)
    assert re.fullmatch(rf"{re.escape(stack.front_url)}/reset/[\w-]+/[0-9a-z]+-[0-9a-f]+", link), link

    page.goto(link)
    page.get_by_label("New password").fill(new)
    page.get_by_role("button", name="Set the password").click()
    expect(page).to_have_url(re.compile(r"/login\?reset=1$"))
    expect(page.get_by_role("status")).to_have_text("Your password was reset. Log in with the new one.")

    log_in(page, stack.front_url, username, new)
    expect(page.get_by_test_id("me-username")).to_have_text(username)
    log_out(page)
    log_in(page, stack.front_url, username, old)
    expect(page.get_by_test_id("error-form")).to_contain_text("Unable to log in")

    # the link worked once
    page.goto(link)
    page.get_by_label("New password").fill("Y3t-another-passphrase")
    page.get_by_role("button", name="Set the password").click()
    expect(page.get_by_test_id("error-form")).to_have_text(
        "This password reset link is invalid, already used or expired. Ask for a new one.")


# -- the project's own journeys: front/e2e, as `make e2e` runs them
def own_journeys(stack, inbox, front: Path, output: Path):
    """`npm run test:e2e` in `front` (what `make e2e` runs), its
    playwright.config.ts pointed at `stack` by its variables: Debian's
    Chromium, the built frontend, and the mail read through Mailpit's API,
    served here over the SMTP server the backend sends to (`inbox`)."""
    with mailpit_api(inbox) as mailpit:
        return node.npm(front, "run", "test:e2e", "--", f"--output={output}",
                        env={"E2E_BASE_URL": stack.front_url, "E2E_MAILPIT_URL": mailpit,
                             "PLAYWRIGHT_CHROMIUM_EXECUTABLE_PATH": CHROMIUM}, timeout=600)


def journey_accounts(stack) -> int:
    """The accounts front/e2e's journeys make (newUser('ada'), newUser('vera'))."""
    (count,), = stack.db.query("SELECT count(*) FROM personas_usuario WHERE username ~ '^(ada|vera)[0-9a-z]{8,}$'",
                               **stack.db.app)
    return count


def test_the_projects_own_playwright_journeys_pass(stack, smtp, front_installed, tmp_path):
    """giga's answers (optional verification): every journey runs and passes,
    against the suite's stack, and the accounts they made are in the database."""
    before = journey_accounts(stack)
    result = own_journeys(stack, smtp, front_installed, tmp_path / "results")
    assert result.returncode == 0, node.shown(result)
    assert re.search(r"^\s*2 passed", result.stdout, re.M), node.shown(result)
    assert not re.search(r"\b(skipped|failed|flaky)\b", result.stdout), node.shown(result)
    assert journey_accounts(stack) == before + 2


@pytest.mark.parametrize("name", [path.stem for path in EXAMPLES if path.stem != "giga"])
def test_the_projects_own_playwright_journeys_pass_for_the_other_examples(name, render, front_installed, tmp_path):
    """Another example's answers, on a stack of its own (acme-pg18:
    mandatory verification, so sign-up starts no session and the journey
    reads the mailed link through the Mailpit API; the journey for optional
    verification is skipped)."""
    project = render(example_answers(name))
    verification = recorded(project)["email_verification"]
    front = tmp_path / "front"
    shutil.copytree(project / "front", front)
    (front / "node_modules").symlink_to(front_installed / "node_modules")
    node.build(front)
    with smtp_server() as inbox, running(project, front, backend_env={"EMAIL_URL": inbox.url}) as own:
        result = own_journeys(own, inbox, front, tmp_path / "results")
        assert result.returncode == 0, node.shown(result)
        expected = (2, 0) if verification == "optional" else (1, 1)
        found = tuple(int(m.group(1)) if (m := re.search(rf"^\s*(\d+) {word}\b", result.stdout, re.M)) else 0
                      for word in ("passed", "skipped"))
        assert found == expected, node.shown(result)
        assert journey_accounts(own) == expected[0]
        subjects = [str(message["Subject"]) for _, message in inbox.messages]
        if verification == "none":
            assert subjects == [], subjects
        else:
            assert all("Verify your email address" in s for s in subjects) and len(subjects) == expected[0], subjects
