"""front/: the SvelteKit app that talks only to the API.

Quick tier: the rendered front/ agrees with the answers and the dev compose,
and its image runs as a non-root user on an exact base image.
Full tier: in a copy of the rendered front/, `npm ci`, `npm run check`,
`npm run lint`, `npm test -- --run`, `npm run test:coverage` (held to its
thresholds) and `npm run build` all pass; neither the
sources nor the build carry anything of the database; and the built server
(`node build`) works against the real backend and database, sends the API
the client's address, answers with its security headers, and never
redirects off-site.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import time
import urllib.parse
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from harness.answers import alias, recorded
from harness import compose, dotenv
from harness.backend import http as api_call, raw_request
from harness.dockerfile import base_images, named_stages
from harness.node import npm, shown
from harness.render import EXAMPLES, example_answers


def aliases(service: dict) -> set[str]:
    """The service's names on all the networks it joins."""
    return {name for network in (service.get("networks") or {}).values() for name in (network or {}).get("aliases", [])}


# ---------------------------------------------------------------------------
# Quick tier: the rendered files, for every example
# ---------------------------------------------------------------------------
def test_front_env_points_at_the_backend_alias(example):
    project, a = example, recorded(example)
    services = yaml.safe_load((project / "docker-compose.dev.yml").read_text())["services"]
    assert alias(a, "backend") in aliases(services["backend"])
    # in Docker: what compose gives the container
    container = compose.service_environment(project, "docker-compose.dev.yml", "frontend")
    # outside Docker (npm run dev, node build): .env.example, the API on its published port
    outside = dotenv.load(project / "front/.env.example")
    for env, api_host in ((container, alias(a, "backend")), (outside, "localhost")):
        assert env["INTERNAL_API_URL"] == f"http://{api_host}:{a['backend_port']}", env
        assert env["PORT"] == str(a["frontend_port"])
        assert env["ORIGIN"] == f"http://localhost:{a['frontend_port']}"
        assert env["PUBLIC_PROJECT_NAME"] == a["project_name"]


def test_front_dev_server_answers_on_the_published_port_and_alias(example):
    project, a = example, recorded(example)
    port = a["frontend_port"]
    frontend = yaml.safe_load((project / "docker-compose.dev.yml").read_text())["services"]["frontend"]
    assert frontend["build"] == {"context": "./front", "target": "dev"}
    assert frontend["env_file"] == "front/.env"
    assert alias(a, "frontend") in aliases(frontend)
    assert "front_node_modules:/app/node_modules" in frontend["volumes"]

    vite = (project / "front/vite.config.ts").read_text()
    assert f"port: {port}," in vite
    hosts = re.search(r"allowedHosts: \[([^\]]*)\]", vite).group(1)
    assert {"localhost", alias(a, "frontend")} <= set(re.findall(r"'([^']+)'", hosts))

    dockerfile = (project / "front/Dockerfile").read_text()
    assert f'"--host", "0.0.0.0", "--port", "{port}"' in dockerfile
    assert f"EXPOSE {port}" in dockerfile
    assert re.search(r"^FROM base AS dev$", dockerfile, re.M)
    assert dockerfile.rstrip().endswith('CMD ["node", "build"]')


def test_front_image_is_built_from_an_exact_release(example):
    """`node:24-slim` moves to another Node release and another Debian under the team."""
    project = example
    images = base_images(project / "front/Dockerfile")
    assert images, "no external base image"
    for image in images:
        assert re.fullmatch(r"node:\d+\.\d+\.\d+-(bookworm|trixie)-slim", image), image


def test_front_image_stages_that_run_a_server_are_not_root(example):
    """Both images that run code (dev: vite dev; production: node build) run as
    the node user (uid 1000); in dev it also owns node_modules, so that the
    named volume Docker seeds from the image stays writable by it."""
    project = example
    stages = {name: stage.instructions for name, stage in named_stages(project / "front/Dockerfile").items()}
    running = {name: steps for name, steps in stages.items() if any(k == "CMD" for k, _ in steps)}
    assert set(running) == {"dev", "production"}, running.keys()
    for name, steps in running.items():
        users = [rest for keyword, rest in steps if keyword == "USER"]
        assert users and users[-1] == "1000:1000", f"{name} runs as {users[-1] if users else 'root'}"
        user_at = max(i for i, (keyword, _) in enumerate(steps) if keyword == "USER")
        assert user_at < next(i for i, (keyword, _) in enumerate(steps) if keyword == "CMD"), name
    dev = stages["dev"]
    user_at = next(i for i, (keyword, _) in enumerate(dev) if keyword == "USER")
    install_at = next(i for i, (keyword, rest) in enumerate(dev) if keyword == "RUN" and "npm ci" in rest)
    assert user_at < install_at, "node_modules must be created by the user that runs vite"
    assert any(keyword == "RUN" and re.search(r"chown (-R )?1000:1000 /app$", rest) for keyword, rest in dev[:user_at]), \
        "npm ci writes node_modules into /app, vite .svelte-kit/"
    copies = [rest for keyword, rest in dev if keyword == "COPY"]
    assert copies and all(rest.startswith("--chown=1000:1000 ") for rest in copies), copies


def test_front_holds_no_jinja_and_only_plain_svelte(example):
    project = example
    front = project / "front"
    files = [p for p in front.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix == ".jinja"]
    # Nothing rendered leaves a Jinja statement behind in the config files.
    for name in ("vite.config.ts", "playwright.config.ts", ".env", ".env.example", "Dockerfile", "package.json"):
        text = (front / name).read_text()
        assert not re.search(r"\{\{|\}\}|\{%|%\}", text), name
    assert json.loads((front / "package.json").read_text())["name"] == "frontend"
    assert json.loads((front / "package-lock.json").read_text())["name"] == "frontend"


COVERAGE_KINDS = {"statements", "branches", "functions", "lines"}


def coverage_thresholds(front: Path) -> dict[str, float]:
    """vite.config.ts's `coverage.thresholds`, by kind."""
    block = re.search(r"^\t\t\tthresholds: \{([^}]*)\}", (front / "vite.config.ts").read_text(), re.M).group(1)
    return {kind: float(value) for kind, value in re.findall(r"(\w+): ([\d.]+)", block)}


def test_front_unit_tests_report_coverage_with_vitests_own_release(example):
    """`npm run test:coverage`: vitest's V8 coverage, from the release of
    @vitest/coverage-v8 that matches vitest's, held to a threshold of every
    kind; its reports are not committed, linted or sent to `docker build`."""
    front = example / "front"
    package = json.loads((front / "package.json").read_text())
    dev = package["devDependencies"]
    assert dev["@vitest/coverage-v8"] == dev["vitest"]
    assert package["scripts"]["test:coverage"] == "vitest run --coverage"
    lock = json.loads((front / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/@vitest/coverage-v8"]["version"] == lock["node_modules/vitest"]["version"] == dev["vitest"]
    vite = (front / "vite.config.ts").read_text()
    assert "provider: 'v8'" in vite and "reportsDirectory: 'coverage'" in vite
    thresholds = coverage_thresholds(front)
    assert set(thresholds) == COVERAGE_KINDS and all(50 <= v < 100 for v in thresholds.values()), thresholds
    # prettier and eslint skip what .gitignore lists
    assert "/coverage" in (front / ".gitignore").read_text().splitlines()
    assert "coverage" in (front / ".dockerignore").read_text().splitlines()


def test_front_e2e_journeys_target_the_dev_stack_by_default(example):
    """front/e2e, the project's own Playwright journeys (`make e2e`): by
    default against the dev stack's published frontend and Mailpit's API,
    both replaceable by a variable; Debian's Chromium when named, else
    Playwright's; the project's verification answer; out of vitest's way."""
    project, a = example, recorded(example)
    front = project / "front"
    package = json.loads((front / "package.json").read_text())
    assert package["scripts"]["test:e2e"] == "playwright test"
    assert re.fullmatch(r"\d+\.\d+\.\d+", package["devDependencies"]["@playwright/test"])
    config = (front / "playwright.config.ts").read_text()
    assert "testDir: 'e2e'" in config
    assert f"baseURL: process.env.E2E_BASE_URL || 'http://127.0.0.1:{a['frontend_port']}'," in config
    assert f"mailpitURL: process.env.E2E_MAILPIT_URL || 'http://127.0.0.1:{a['mail_ui_port']}'," in config
    assert f"emailVerification: '{a['email_verification']}'," in config
    assert "const chromium = process.env.PLAYWRIGHT_CHROMIUM_EXECUTABLE_PATH;" in config
    assert "launchOptions: chromium ? { executablePath: chromium } : {}," in config
    services = yaml.safe_load((project / "docker-compose.dev.yml").read_text())["services"]
    assert f"127.0.0.1:{a['frontend_port']}:{a['frontend_port']}" in services["frontend"]["ports"]
    assert f"127.0.0.1:{a['mail_ui_port']}:8025" in services["mailpit"]["ports"]
    specs = sorted(p.name for p in (front / "e2e").glob("*.spec.ts"))
    assert specs == ["accounts.spec.ts"], specs
    journeys = (front / "e2e/accounts.spec.ts").read_text()
    assert "mail.link(user.email, '/verify/')" in journeys and "logOut(page)" in journeys
    # vitest runs src/ only; svelte-check type-checks e2e/ too
    vite = (front / "vite.config.ts").read_text()
    assert "include: ['src/**/*.{test,spec}.{js,ts}']" in vite
    assert "config.include.push('../e2e/**/*.ts', '../playwright.config.ts');" in vite
    assert {"/test-results", "/playwright-report"} <= set((front / ".gitignore").read_text().splitlines())


# ---------------------------------------------------------------------------
# Full tier: npm in a copy of the rendered front/ (conftest: front_installed, front_built)
# ---------------------------------------------------------------------------
@pytest.mark.full
def test_npm_ci_installs_exactly_the_lockfile(front_installed):
    assert (front_installed / "node_modules/.bin/vite").exists()
    lock = json.loads((front_installed / "package-lock.json").read_text())
    package = json.loads((front_installed / "package.json").read_text())
    assert lock["packages"][""]["devDependencies"] == package["devDependencies"]
    pinned = {**package.get("dependencies", {}), **package["devDependencies"]}
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in pinned.values()), pinned
    assert pinned["@sveltejs/kit"].startswith("2."), "Kit 3 needs Node >= 22.17"


@pytest.mark.full
def test_npm_run_check(front_installed):
    result = npm(front_installed, "run", "check")
    assert result.returncode == 0, shown(result)
    assert "0 errors" in result.stdout, shown(result)


@pytest.mark.full
def test_npm_run_lint(front_installed):
    result = npm(front_installed, "run", "lint")
    assert result.returncode == 0, shown(result)


@pytest.mark.full
def test_npm_test(front_installed):
    result = npm(front_installed, "test", "--", "--run")
    assert result.returncode == 0, shown(result)
    passed = re.search(r"Tests\s+(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) > 0, shown(result)
    assert "failed" not in result.stdout.split("Test Files", 1)[-1], shown(result)


@pytest.mark.full
def test_npm_run_test_coverage_reports_it_and_holds_its_thresholds(front_installed, tmp_path):
    """The table (on the terminal, and plain in coverage.txt for CI's run
    summary) and the totals, over every source file, tests or not; each total
    at most a few points above its threshold (what the shipped tests reach,
    minus a small margin); and a threshold above the total fails the run."""
    reports = tmp_path / "coverage"
    result = npm(front_installed, "run", "test:coverage", "--", f"--coverage.reportsDirectory={reports}")
    assert result.returncode == 0, shown(result)
    assert re.search(r"^All files\s+\|", result.stdout, re.M), shown(result)
    table = (reports / "coverage.txt").read_text()
    assert re.search(r"^File\s+\| % Stmts \| % Branch \| % Funcs \| % Lines \|", table, re.M), table
    assert "All files" in table and "\x1b[" not in table, table
    summary = json.loads((reports / "coverage-summary.json").read_text())
    counted = {Path(name).relative_to(front_installed).as_posix() for name in summary if name != "total"}
    sources = {p.relative_to(front_installed).as_posix() for p in (front_installed / "src").rglob("*")
               if p.suffix in {".ts", ".svelte"} and not p.name.endswith((".spec.ts", ".d.ts"))
               and "testing" not in p.parts}
    assert counted == sources, counted ^ sources
    thresholds = coverage_thresholds(front_installed)
    totals = {kind: summary["total"][kind]["pct"] for kind in COVERAGE_KINDS}
    for kind, minimum in thresholds.items():
        assert minimum <= totals[kind] <= minimum + 5, (kind, minimum, totals[kind])

    over = npm(front_installed, "run", "test:coverage", "--", f"--coverage.reportsDirectory={tmp_path / 'over'}",
               f"--coverage.thresholds.statements={totals['statements'] + 0.5}")
    assert over.returncode != 0, shown(over)
    assert re.search(r"Coverage for statements \([\d.]+%\) does not meet global threshold", over.stdout + over.stderr), \
        shown(over)


@pytest.mark.full
def test_npm_run_build(front_built):
    assert (front_built / "build/index.js").is_file()
    assert (front_built / "build/handler.js").is_file()
    assert list((front_built / "build/client/_app/immutable").rglob("*.js"))


@pytest.mark.full
def test_other_answers_still_check_and_lint(render, front_installed, tmp_path):
    """The templated files (vite.config.ts above all) stay valid and prettier-clean for other names and ports."""
    for path in EXAMPLES:
        if path.stem == "giga":
            continue
        front = tmp_path / path.stem
        shutil.copytree(render(example_answers(path.stem)) / "front", front)
        (front / "node_modules").symlink_to(front_installed / "node_modules")
        for script in ("check", "lint"):
            result = npm(front, "run", script)
            assert result.returncode == 0, f"{path.stem}: {shown(result)}"


@pytest.mark.full
def test_no_database_secret_or_name_in_front_or_its_build(giga_project, front_built):
    containers = compose.environments(giga_project)
    db_env, back_env = containers["db"], containers["backend"]
    values = {
        "POSTGRES_PASSWORD": db_env["POSTGRES_PASSWORD"],
        "APP_DB_PASSWORD": db_env["APP_DB_PASSWORD"],
        "DB_PASSWORD": back_env["DB_PASSWORD"],
        "DJANGO_SECRET_KEY": back_env["DJANGO_SECRET_KEY"],
    }
    assert all(len(v) >= 32 for v in values.values()), "expected generated secrets"
    needles = {f"the value of {k}": v for k, v in values.items()}
    needles |= {"DB_PASSWORD": "DB_PASSWORD", "POSTGRES_": "POSTGRES_",
                "the db user": db_env["APP_DB_USER"]}

    def files(root: Path):
        return [p for p in root.rglob("*") if p.is_file() and "node_modules" not in p.relative_to(root).parts]

    searched = files(giga_project / "front") + files(front_built / "build")
    assert any(p.name == "index.js" for p in searched) and any(p.name == "+page.svelte" for p in searched)
    found = [f"{p}: {what}" for p in searched for what, needle in needles.items()
             if needle.encode() in p.read_bytes()]
    assert not found, found


# ---------------------------------------------------------------------------
# Full tier: the built server against the real backend and database (conftest: stack)
# ---------------------------------------------------------------------------
class Browser:
    """Just enough of a browser: HTML requests, form POSTs with Origin, one cookie jar."""

    def __init__(self, base_url: str, address: str | None = None):
        """`address`: the loopback address this browser connects from (Linux
        routes all of 127.0.0.0/8 to lo), so that tests can be several clients."""
        self.origin, self.cookies = base_url, {}
        self.netloc = urllib.parse.urlsplit(base_url).netloc
        self.source = (address, 0) if address else None

    def request(self, method: str, path: str, form: dict | None = None, origin: bool = True,
                headers: dict | None = None):
        connection = http.client.HTTPConnection(self.netloc, timeout=30, source_address=self.source)
        headers = {"Accept": "text/html", **(headers or {})}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            if origin:
                headers["Origin"] = self.origin
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        html = response.read().decode()
        for cookie in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if value and "Max-Age=0" not in cookie:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)
        connection.close()
        return response.status, response.headers, html


def text(html: str, testid: str) -> str | None:
    html = re.sub(r"<!--.*?-->", "", html, flags=re.S)
    match = re.search(rf'<(\w+)[^>]*data-testid="{testid}"[^>]*>(.*?)</\1>', html, re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", match.group(2))).strip() if match else None




def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:8]}"


def user_count(stack) -> int:
    (count,), = stack.db.query("SELECT count(*) FROM personas_usuario", **stack.db.app)
    return count


@pytest.mark.full
def test_home_page_shows_the_real_system_status(stack, giga_project):
    status, _, html = Browser(stack.front_url).request("GET", "/")
    assert status == 200
    assert (text(html, "api-status"), text(html, "db-status")) == ("ok", "ok")
    assert text(html, "system-state") == "All systems operational"
    assert text(html, "user-count") is None, "the public health answer has no user count"
    assert "<title>Giga</title>" in html
    assert stack.api_url.split("//")[1] not in html and alias(recorded(giga_project), "backend") not in html, \
        "the API's address must not reach the browser"


@pytest.mark.full
def test_signup_login_me_users_logout(stack):
    browser, name = Browser(stack.front_url), unique("ada")
    status, headers, _ = browser.request("GET", "/me")
    assert (status, headers["Location"]) == (303, "/login?next=%2Fme")
    status, _, html = browser.request("POST", "/signup", {"username": stack.staff["username"],
                                                          "email": "x@example.com", "password": "Xy-12345-long"})
    assert (status, text(html, "error-username")) == (400, "A user with that username already exists.")
    status, _, html = browser.request("POST", "/signup", {"username": name, "email": "x@example.com",
                                                          "password": "123"})
    assert status == 400
    assert text(html, "error-password"), "the API's password message is shown next to the field"
    assert "123" not in re.findall(r'value="([^"]*)"', html), "a rejected password is not echoed back"
    status, headers, _ = browser.request("POST", "/signup", {"username": name, "email": f"{name}@example.com",
                                                             "password": "Lovelace-1815-xyz"})
    assert (status, headers["Location"]) == (303, "/me")
    cookie = next(c for c in headers.get_all("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    status, _, html = browser.request("GET", "/me")
    assert (status, text(html, "me-username")) == (200, name)
    status, _, html = browser.request("GET", "/users")
    assert (status, text(html, "error-status")) == (403, "403")
    token = browser.cookies["session"]
    assert api_call("GET", f"{stack.api_url}/api/auth/me/", token=token)[0] == 200
    status, headers, _ = browser.request("POST", "/logout", {})
    assert (status, headers["Location"]) == (303, "/") and "session" not in browser.cookies
    assert api_call("GET", f"{stack.api_url}/api/auth/me/", token=token)[0] == 401, \
        "logging out revokes the API token"
    status, _, html = browser.request("POST", "/login", {"username": stack.staff["username"], "password": "nope"})
    assert (status, text(html, "error-form")) == (400, "Unable to log in with provided credentials.")


@pytest.mark.full
def test_staff_pages_through_the_users(stack):
    stack.backend.manage("shell", "-c", "from personas.models import Usuario; Usuario.objects.bulk_create("
                         f"[Usuario(username='{unique('bulk')}-' + str(i)) for i in range(25)])", check=True)
    browser = Browser(stack.front_url)
    status, headers, _ = browser.request("POST", "/login?next=%2Fusers",
                                         {"username": stack.staff["username"], "password": stack.staff["password"]})
    assert (status, headers["Location"]) == (303, "/users")
    count = user_count(stack)
    last_page = (count + 19) // 20
    status, _, html = browser.request("GET", "/users")
    assert status == 200 and html.count('data-testid="user-row"') == 20
    assert 'data-testid="page-next"' in html and 'data-testid="page-prev"' not in html
    status, _, html = browser.request("GET", f"/users?page={last_page}")
    assert html.count('data-testid="user-row"') == count - 20 * (last_page - 1)
    assert 'data-testid="page-prev"' in html and 'data-testid="page-next"' not in html


@pytest.mark.full
def test_cross_site_form_posts_are_refused(stack):
    status, _, _ = Browser(stack.front_url).request("POST", "/login", {"username": "x", "password": "x"},
                                                    origin=False)
    assert status == 403


@pytest.mark.full
def test_database_outage_shows_degraded_then_recovers(stack):
    browser = Browser(stack.front_url)
    stack.db.stop()
    try:
        started = time.monotonic()
        status, _, html = browser.request("GET", "/")
        assert (status, text(html, "api-status"), text(html, "db-status")) == (200, "degraded", "unreachable")
        assert text(html, "system-state").startswith("Degraded")
        assert time.monotonic() - started < 15
    finally:
        stack.db.start()
    status, _, html = browser.request("GET", "/")
    assert (text(html, "api-status"), text(html, "db-status")) == ("ok", "ok"), "no restart needed"


SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "Referrer-Policy": "strict-origin-when-cross-origin",
                    "X-Frame-Options": "DENY"}
CSP = {"default-src": "'self'", "frame-ancestors": "'none'", "form-action": "'self'", "base-uri": "'self'",
       "object-src": "'none'"}


def csp_directives(header: str) -> dict[str, str]:
    return {name: value.strip() for name, _, value in
            (part.strip().partition(" ") for part in header.split(";") if part.strip())}


@pytest.mark.full
def test_every_kind_of_answer_carries_the_security_headers(stack):
    """Pages, redirects, failed form posts, error pages and endpoints alike."""
    browser = Browser(stack.front_url)
    answers = {
        "page": browser.request("GET", "/"),
        "redirect to log in": browser.request("GET", "/me"),
        "failed form post": browser.request("POST", "/login", {"username": "", "password": ""}),
        "404 page": browser.request("GET", "/no-such-page"),
        "endpoint": browser.request("GET", "/healthz"),
        "page data": browser.request("GET", "/login/__data.json"),
    }
    assert [status for status, _, _ in answers.values()] == [200, 303, 400, 404, 200, 200]
    for kind, (_, headers, _) in answers.items():
        for name, value in SECURITY_HEADERS.items():
            assert headers[name] == value, f"{name} on the {kind}"
    for kind in ("page", "failed form post", "404 page"):
        policy = csp_directives(answers[kind][1]["Content-Security-Policy"])
        assert {name: policy.get(name) for name in CSP} == CSP, f"{kind}: {policy}"
        scripts = policy["script-src"].split()
        assert "'unsafe-inline'" not in scripts and any(s.startswith("'nonce-") for s in scripts), policy
        nonce = next(s for s in scripts if s.startswith("'nonce-"))[len("'nonce-"):-1]
        html = answers[kind][2]
        assert html.count("<script") == html.count(f'<script nonce="{nonce}"') >= 1, \
            f"{kind}: every inline script carries the nonce"


# The shapes of open redirects, as a browser would send them in the query
# string: decoded once by SvelteKit, then resolved by the browser against this site.
OFF_SITE_NEXT = {
    "protocol-relative": ["//evil.example/", "%2F%2Fevil.example", "///evil.example"],
    "backslash": ["/%5Cevil.example", "%5C%5Cevil.example", "/%5C/evil.example", "/\\evil.example",
                  "%5C/evil.example"],
    "tab and newlines, dropped by browsers": ["/%09/evil.example/", "/%0A/evil.example", "/%0D%0A/evil.example"],
    # Normalised by the URL parser into a leading `//`: plain, encoded for the query, or encoded once more.
    "dot segments": ["/.//evil.example/", "/..//evil.example", "/%2e//evil.example", "/.%2F%2Fevil.example",
                     "/%252e//evil.example", "/%252E%252E//evil.example", "/./%252e/..//evil.example",
                     "/a/../..//evil.example", "/a/%252e%252e/%252e%252e//evil.example",
                     "/%252e%252f%252fevil.example", "/.%255C/evil.example", "/%252e%2509//evil.example"],
    "double encoding": ["/%252F/evil.example", "/%2509/evil.example", "/%255Cevil.example",
                        "/%25252F%25252Fevil.example"],
    "header injection": ["/me%0D%0ASet-Cookie:%20session=attacker", "/me%00", "/me%0ALocation:%20//evil.example"],
    "absolute URL or scheme": ["https://evil.example/", "http:evil.example", "javascript:alert(1)",
                               "data:text/html,x", "evil.example"],
}


def resolved_path(path: str) -> str:
    """`path`'s dot segments resolved as browsers do (the WHATWG URL standard,
    `%2e` counting as a dot; urllib's urljoin differs)."""
    segments, resolved = path.split("/")[1:], []
    for index, segment in enumerate(segments):
        dots = segment.lower().replace("%2e", ".")
        if dots in {".", ".."}:
            if dots == ".." and resolved:
                resolved.pop()
            if index == len(segments) - 1:
                resolved.append("")
        else:
            resolved.append(segment)
    return "/" + "/".join(resolved)


def stays_on_site(location: str | None) -> bool:
    """`location`, resolved by a browser against a page of this site, stays on
    it and is not protocol-relative: a path with one leading slash, no
    backslash (read as "/"), no control character (dropped), and none once
    its dot segments are resolved either."""
    if not location or not location.startswith("/") or location.startswith("//") or "\\" in location:
        return False
    if re.search(r"[\x00-\x20\x7f]", location):
        return False
    return not resolved_path(re.split(r"[?#]", location, maxsplit=1)[0]).startswith("//")


@pytest.mark.full
def test_login_never_redirects_off_site(stack):
    """The form's redirect after logging in, and the logged-in visit to /login,
    both go to a path on this site whatever `next` holds: never elsewhere, never a 500."""
    credentials = {"username": stack.staff["username"], "password": stack.staff["password"]}
    cases = [(shape, next_) for shape, values in OFF_SITE_NEXT.items() for next_ in values]
    browser = None
    for n, (shape, next_) in enumerate(cases, start=1):
        # Each login from an address of its own: the per-address limit stays out of the way.
        browser = Browser(stack.front_url, f"127.0.3.{n}")
        status, headers, _ = browser.request("POST", f"/login?next={next_}", credentials)
        assert stays_on_site(headers.get("Location")), (shape, next_, status, headers.get("Location"))
        assert (status, headers.get("Location")) == (303, "/me"), f"POST, {shape}: {next_}"
        assert "session" in browser.cookies
    for shape, next_ in cases:
        status, headers, _ = browser.request("GET", f"/login?next={next_}")
        assert stays_on_site(headers.get("Location")), (shape, next_, status, headers.get("Location"))
        assert (status, headers.get("Location")) == (303, "/me"), f"GET, {shape}: {next_}"
    for next_, expected in [("%2Fusers%3Fpage%3D2", "/users?page=2"), ("/me%3Fx=1%23y", "/me?x=1#y"),
                            ("/users/./%2e%2e/me", "/me"), ("/users?page=2", "/users?page=2")]:
        status, headers, _ = browser.request("GET", f"/login?next={next_}")
        assert (status, headers["Location"]) == (303, expected), "a path on this site is kept"
        status, headers, _ = Browser(stack.front_url, "127.0.3.250").request("POST", f"/login?next={next_}",
                                                                             credentials)
        assert (status, headers["Location"]) == (303, expected), "a path on this site is kept"
    # The check itself tells these apart.
    assert all(map(stays_on_site, ("/me", "/users?page=2", "/me?x=1#//y", "/a/.//b", "/a//b")))
    assert not any(map(stays_on_site, ("//evil.example", "/\\evil.example", "/.//evil.example", "/%2E//evil.example",
                                       "/a/../..//evil.example", "/\t/evil.example", "https://evil.example/",
                                       "http:evil.example", None)))


@pytest.mark.full
def test_opening_a_verification_link_verifies_nothing_until_confirmed(stack, smtp):
    """Mail scanners and link previews open links too: a GET of /verify/<key>
    (the page, or its data as a client-side navigation fetches it) leaves the
    address unverified and the link unspent; the page's form POST verifies it, once."""
    name, browser = unique("gina"), Browser(stack.front_url, "127.0.3.251")
    status, _, _ = browser.request("POST", "/signup", {"username": name, "email": f"{name}@example.com",
                                                       "password": "Lovelace-1815-xyz"})
    assert status == 303
    link = smtp.link(smtp.wait_for(f"{name}@example.com", "Verify your email address"), stack.front_url)
    path = urllib.parse.urlsplit(link).path
    assert re.fullmatch(r"/verify/[^/]+", path), link

    def verified() -> bool:
        (state,), = stack.db.query("SELECT email_verified FROM personas_usuario WHERE username = %s",
                                   params=(name,), **stack.db.app)
        return state

    scanner = Browser(stack.front_url, "127.0.3.252")
    for method, url in [("GET", path), ("HEAD", path), ("GET", f"{path}/__data.json"),
                        ("GET", f"{path}/__data.json?x-sveltekit-invalidated=01")]:
        status, _, _ = scanner.request(method, url)
        assert status == 200, (method, url, status)
        assert not verified(), f"{method} {url} verified the address"
    _, _, html = browser.request("GET", path)
    assert text(html, "verify-result") is None
    assert re.search(r'<form method="POST"[^>]*>.*?<button type="submit">Verify my address</button>', html, re.S)

    status, _, html = browser.request("POST", path, {})
    assert (status, text(html, "verify-result")) == (200, f"Your email address {name}@example.com is verified.")
    assert verified()
    status, _, html = browser.request("POST", path, {})
    assert (status, text(html, "verify-result")) == \
        (400, "This verification link is invalid, already used or expired. Ask for a new one.")
    assert browser.request("POST", path, {}, origin=False)[0] == 403, "a cross-site form post is refused"


def per_minute(rate: str) -> int:
    """The number of a DRF-style rate such as `20/min`."""
    number, _, period = rate.partition("/")
    assert period in {"m", "min", "minute"}, rate
    return int(number)


@pytest.mark.full
def test_login_limits_count_each_browser_by_its_own_address(stack, giga_project):
    """SvelteKit's server forwards each browser's address and the backend
    limits logins per address: a browser past its limit gets the API's 429 as
    a form error, another browser is not affected, and a browser cannot take
    on someone else's address by sending X-Forwarded-For itself."""
    limit = per_minute(dotenv.load(giga_project / "back/.env")["DJANGO_RATE_LOGIN_CLIENT"])
    greedy, other, impostor = (Browser(stack.front_url, f"127.0.0.{n}") for n in (21, 22, 23))

    def attempt(browser, **kwargs):
        # A new unknown account each time: only the per-address limit applies.
        status, _, html = browser.request("POST", "/login", {"username": unique("nobody"), "password": "x"}, **kwargs)
        return status, text(html, "error-form")

    refused = (400, "Unable to log in with provided credentials.")
    assert [attempt(greedy) for _ in range(limit)] == [refused] * limit
    status, message = attempt(greedy)
    assert status == 429 and message.startswith("Request was throttled"), (status, message)
    assert attempt(other) == refused, "another browser is limited with the first one"
    assert attempt(impostor, headers={"X-Forwarded-For": "127.0.0.21"}) == refused, \
        "the browser's own X-Forwarded-For reached the backend"


@pytest.mark.full
def test_session_lives_as_long_as_the_token_and_ends_with_it(stack):
    """The cookie's Max-Age follows the token's expiry, and once the API stops accepting the token the visitor is
    logged out: the cookie goes and /me sends them to log in."""
    # An address of its own: the browser tests before it spend 127.0.0.1's logins per minute.
    address = "127.0.0.24"
    browser, credentials = Browser(stack.front_url, address), {k: stack.staff[k] for k in ("username", "password")}
    status, headers, _ = browser.request("POST", "/login", credentials)
    assert status == 303
    cookie = next(c for c in headers.get_all("Set-Cookie") if c.startswith("session="))
    max_age = int(re.search(r"Max-Age=(\d+)", cookie).group(1))
    status, _, body = raw_request(stack.api_url, "POST", "/api/auth/login/", json.dumps(credentials).encode(),
                                  [("Content-Type", "application/json")], source=address)
    assert status == 200, (status, body)
    answer = json.loads(body)
    remaining = datetime.fromisoformat(answer["expiry"].replace("Z", "+00:00")) - datetime.now(timezone.utc)
    assert abs(max_age - remaining.total_seconds()) < 60, (max_age, answer["expiry"])

    token = browser.cookies["session"]
    assert api_call("POST", f"{stack.api_url}/api/auth/logout/", token=token)[0] in (200, 204)
    status, headers, _ = browser.request("GET", "/me")
    assert (status, headers["Location"]) == (303, "/login?next=%2Fme")
    assert "session" not in browser.cookies, "the cookie of a revoked token is deleted"
