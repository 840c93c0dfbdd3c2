"""End to end, in a real browser: Chromium -> front/ -> back/ -> db/.

Debian's Chromium (never a downloaded browser), driven by Playwright, against
the stack fixture: the real PostgreSQL from the rendered db/, the migrated
backend served as its Dockerfile serves it, and the built SvelteKit app on
node. A failing step leaves a screenshot in $E2E_ARTIFACTS (default
test-artifacts/ in the repository).

Every test also holds the app to its security policy (conftest's `page`,
harness.browser.Watched): every answer of the frontend the browser loads
(documents, page data, form actions) carries the security headers, and the
browser reports no Content-Security-Policy violation, while the pages
hydrate and the flows work.

The generated project's own Playwright journeys (front/e2e, `make e2e`) run
here too, with its playwright.config.ts: giga's against the same stack, the
other examples' (other verification answers) and one random answer set's against
a stack of their own.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from playwright.sync_api import Page, expect

from harness import node
from harness.browser import CHROMIUM, log_in, sign_up
from harness.answers import recorded
from harness.mail import mailpit_api, smtp_server
from harness.random_answers import answer_sets, expected_refusal
from harness.render import example_answers
from harness.stack import running

pytestmark = pytest.mark.full


def test_home_page_shows_the_three_tiers(stack, page):
    page.goto(stack.front_url)
    expect(page.get_by_test_id("api-status")).to_have_text("ok")
    expect(page.get_by_test_id("db-status")).to_have_text("ok")
    expect(page.get_by_test_id("system-state")).to_have_text("All systems operational")


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


# -- the project's own journeys: front/e2e, as `make e2e` runs them, for each
# email_verification answer. They sign up, log in, see /me and log out, verify
# an address, reset a forgotten password and change the address, through the
# mail the backend sends (read through Mailpit's API). The template checks
# what the journeys cannot see: which mails each answer sends, from whom, to
# whom, and the accounts' rows in the isolated database.
JOURNEY_NAMES = "(ada|vera|rita|emil)"  # newUser()'s names in front/e2e
JOURNEY_MAIL = rf"(new-)?{JOURNEY_NAMES}[0-9a-z]{{8,}}@example\.com"  # and email-change's new address
# (passed, skipped), and the mails the journeys make, by subject, per answer:
# a verification mail at each sign-up and for the new address of a change
# (optional: the vera journey too; mandatory: the others verify in the
# journey; none: it is skipped, no verification mail), one reset, the notices
# to the old address of a change.
EXPECTED = {
    "optional": ((4, 0), {"Verify your email address": 5, "Reset your password": 1,
                          "Your address is about to change": 1, "Your address has changed": 1}),
    "mandatory": ((3, 0), {"Verify your email address": 4, "Reset your password": 1,
                           "Your address is about to change": 1, "Your address has changed": 1}),
    "none": ((3, 0), {"Reset your password": 1, "Your address has changed": 1}),
}


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
    """The accounts front/e2e's journeys make (newUser('ada'), ...)."""
    (count,), = stack.db.query(f"SELECT count(*) FROM personas_usuario WHERE username ~ '^{JOURNEY_NAMES}[0-9a-z]{{8,}}$'",
                               **stack.db.app)
    return count


def check_own_journeys(stack, inbox, front: Path, output: Path) -> None:
    """The project's journeys pass against `stack` (those its answer has:
    none skipped), their accounts are rows of its database, and the
    backend sent their mails, from the admin address, to the journeys'
    addresses only (a reset asked for an unknown address sends nothing)."""
    answers = recorded(stack.backend.project)
    (passed, skipped), subjects = EXPECTED[answers["email_verification"]]
    accounts, since = journey_accounts(stack), len(inbox.messages)
    result = own_journeys(stack, inbox, front, output)
    assert result.returncode == 0, node.shown(result)
    found = tuple(int(m.group(1)) if (m := re.search(rf"^\s*(\d+) {word}\b", result.stdout, re.MULTILINE)) else 0
                  for word in ("passed", "skipped"))
    assert found == (passed, skipped), node.shown(result)
    assert not re.search(r"\b(failed|flaky)\b", result.stdout), node.shown(result)
    # psql on the isolated database, as docs/architecture.md checks it
    assert journey_accounts(stack) == accounts + passed

    mails = inbox.received(JOURNEY_MAIL, sum(subjects.values()), since=since)
    got = Counter(str(message["Subject"]).removeprefix(f"[{answers['project_name']}] ") for _, message in mails)
    assert got == subjects, got
    assert {str(message["From"]) for _, message in mails} == {answers["admin_email"]}
    strangers = [(r, str(m["Subject"])) for r, m in inbox.messages[since:] if any(a.startswith("nobody-") for a in r)]
    assert not strangers, strangers


def test_the_projects_own_playwright_journeys_pass(stack, smtp, front_installed, tmp_path):
    """giga's answers (optional verification), against the suite's stack."""
    check_own_journeys(stack, smtp, front_installed, tmp_path / "results")


def journeys_on_own_build(project: Path, front_installed: Path, tmp_path: Path, gates: bool = False) -> None:
    """`project`'s front/ built (on giga's node_modules: the same lock), its
    stack started, and its journeys run against it. With `gates`, the
    project's other CI gates first: svelte-check, ESLint and prettier, and
    the migrations check against its database."""
    front = tmp_path / "front"
    shutil.copytree(project / "front", front)
    (front / "node_modules").symlink_to(front_installed / "node_modules")
    for script in ("check", "lint") if gates else ():
        result = node.npm(front, "run", script)
        assert result.returncode == 0, node.shown(result)
    node.build(front)
    with smtp_server() as inbox, running(project, front, backend_env={"EMAIL_URL": inbox.url}) as own:
        if gates:
            result = own.backend.manage("makemigrations", "--check", "--dry-run")
            assert result.returncode == 0 and "No changes detected" in result.stdout, result.stdout + result.stderr
        check_own_journeys(own, inbox, front, tmp_path / "results")


def mandatory_verification(render, front_installed, tmp_path: Path) -> None:
    """acme-pg18's answers (mandatory verification: sign-up opens no session,
    the journeys verify through the mailed link), with its own build."""
    project = render(example_answers("acme-pg18"))
    assert recorded(project)["email_verification"] == "mandatory"
    journeys_on_own_build(project, front_installed, tmp_path)


def no_verification(project: Path, giga_project: Path, front_installed: Path, front_built: Path,
                    tmp_path: Path) -> None:
    """giga's answers but email_verification: none (no verification mail; a
    changed address replaces the old at once). The answer changes only the
    backend and front/'s playwright.config.ts, so the stack serves giga's build."""
    changed = {path.relative_to(project / "front") for path in (project / "front").rglob("*")
               if path.is_file() and (giga_project / path.relative_to(project)).read_bytes() != path.read_bytes()}
    assert changed == {Path("playwright.config.ts")}, changed
    front = tmp_path / "front"
    shutil.copytree(project / "front", front)
    (front / "node_modules").symlink_to(front_installed / "node_modules")
    with smtp_server() as inbox, running(project, front_built, backend_env={"EMAIL_URL": inbox.url}) as own:
        check_own_journeys(own, inbox, front, tmp_path / "results")


def test_the_projects_own_playwright_journeys_pass_for_the_other_answers(render, giga_project, front_installed,
                                                                         front_built, tmp_path):
    """The two other email_verification answers, each on a stack of its own,
    side by side (most of a journey's time is spent waiting: for the page to
    settle, for the task worker's mail): mandatory (acme-pg18) and none."""
    mandatory = tmp_path / "mandatory"
    none = tmp_path / "none"
    mandatory.mkdir()
    none.mkdir()
    # copier renders one project at a time
    render(example_answers("acme-pg18"))
    without = render({**example_answers("giga"), "email_verification": "none"})
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = [pool.submit(mandatory_verification, render, front_installed, mandatory),
                pool.submit(no_verification, without, giga_project, front_installed, front_built, none)]
        for future in done:
            future.result()


# One example, never shrunk: each costs a build and a stack.
@settings(max_examples=1, deadline=None, derandomize=True, database=None, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(answers=answer_sets())
def test_the_projects_own_journeys_pass_on_a_random_answer_render(answers, render, front_installed,
                                                                  tmp_path_factory):
    """One random answer set (harness.random_answers, derandomised: the same
    set every run; one the template must refuse is left out), with names,
    ports, language, time zone, PostgreSQL major and verification answer of
    its own: the project's gates (test_quality.py runs mypy and ruff on such
    renders), its own build, its own stack, its own journeys."""
    assume(expected_refusal(answers) is None)
    journeys_on_own_build(render(answers), front_installed, tmp_path_factory.mktemp("random"), gates=True)
