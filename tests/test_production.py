"""Production on one host, running: the rendered Caddyfile run by Debian's
caddy (`tls internal` for localhost) in front of the backend on its
production settings (granian, its task worker) and the built frontend,
against a real PostgreSQL; Chromium goes through HTTPS. And observing it:
one request id through the three tiers, JSON log lines with nothing secret
in them, metrics that Caddy never routes, and errors sent to a local
envelope endpoint (SENTRY_DSN). The files: test_production_files.py.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import secrets
import shutil
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from harness import caddy, compose, node
from harness.answers import alias, recorded
from harness.backend import Backend, raw_request
from harness.net import free_port
from harness.postgres import start_project_db
from harness.python import venv_for
from harness.sentry import envelope_endpoint

PROD = "docker-compose.prod.yml"


STAFF = {"username": "root-admin", "email": "root-admin@example.com", "password": "Root-admin-pass-1234"}


@pytest.fixture(scope="module")
def production(giga_project, front_built, tmp_path_factory, smtp):
    """db/ -> back/ (production settings, granian, its task worker) and front/
    (`node build`) -> Caddy, with each upstream on a loopback address of its
    own at the rendered port, named as on the app network. Mail goes to
    `smtp`; both tiers report errors to a local envelope endpoint (SENTRY_DSN);
    each process's output is kept, for the tests of what they log."""
    # A copy: the image's build step writes back/staticfiles/.
    project = tmp_path_factory.mktemp("production") / "project"
    project.mkdir()
    subprocess.run(["cp", "-a", str(giga_project / "back"), str(project / "back")], check=True)
    (project / "front").mkdir()
    for name in (PROD, "Caddyfile", ".copier-answers.yml", "front/.env"):
        shutil.copy(giga_project / name, project / name)
    a = recorded(project)
    backend_ip, frontend_ip = "127.90.0.2", "127.90.0.3"
    db = start_project_db(giga_project)
    try:
        # Connections between loopback addresses come from 127.0.0.1: that is
        # where the frontend and Caddy call the backend from.
        backend = Backend(project, db, venv_for(project / "back"), compose_file=PROD,
                          hosts={alias(a, "frontend"): "127.0.0.1", alias(a, "caddy"): "127.0.0.1"})
        # The image's `RUN ... collectstatic`, with the stage's ENV and no secrets (a build has none).
        (collect,) = [run for run in backend.stage.runs if "collectstatic" in run]
        backend.run("sh", "-c", collect, env={**backend.stage.env, "DB_PASSWORD": "", "DJANGO_SECRET_KEY": ""},
                    check=True)
        migrate = compose.load(project / PROD)["services"]["migrate"]
        backend.run(*backend.stage.entrypoint, *migrate["command"], check=True)
        backend.manage("shell", "-c", "from personas.models import Usuario; Usuario.objects.create_superuser("
                       f"{STAFF['username']!r}, {STAFF['email']!r}, {STAFF['password']!r})", check=True)
        hosts = {alias(a, "backend"): backend_ip, alias(a, "frontend"): frontend_ip}
        logs = tmp_path_factory.mktemp("logs")
        with caddy.running(project / "Caddyfile", hosts) as proxy, envelope_endpoint() as envelopes:
            origin = f"https://{a['domain']}:{proxy.https_port}"
            env = {"SENTRY_DSN": envelopes.dsn, "EMAIL_URL": smtp.url}
            with backend.serve(port=a["backend_port"], host=backend_ip, env={"GRANIAN_HOST": backend_ip, **env},
                               log=logs / "backend.log"), backend.work(env=env) as worker:
                with node.serve_front(project, front_built, a["backend_port"], compose_file=PROD, host=frontend_ip,
                                      port=a["frontend_port"], backend_host=backend_ip, origin=origin,
                                      environment={"SENTRY_DSN": envelopes.dsn}, log=logs / "frontend.log",
                                      metrics_port=(front_metrics := free_port())):
                    yield {"project": project, "caddy": proxy, "url": origin, "db": db, "domain": a["domain"],
                           "frontend_ip": frontend_ip, "backend_ip": backend_ip, "backend": backend,
                           "envelopes": envelopes, "public_url": f"https://{a['domain']}",
                           "front_metrics": f"http://{frontend_ip}:{front_metrics}/metrics",
                           "logs": {"caddy": proxy.log_path, "backend": logs / "backend.log",
                                    "worker": worker.log_path, "frontend": logs / "frontend.log"}}
    finally:
        db.destroy()


@pytest.fixture(autouse=True)
def logs_of_a_failure(request):
    """A failed test prints the end of each tier's log (CI keeps no files)."""
    yield
    report = getattr(request.node, "report_call", None)  # conftest's makereport hook
    if report is not None and report.failed and "production" in request.fixturenames:
        for name, path in request.getfixturevalue("production")["logs"].items():
            lines = Path(path).read_text(errors="replace").splitlines() if Path(path).exists() else []
            print(f"--- the last lines of {name}'s log ({path}):", *lines[-40:], sep="\n")


@pytest.fixture
def context_options():
    """Caddy's local CA is not in Chromium's store."""
    return {"ignore_https_errors": True}


@pytest.mark.full
def test_the_frontends_healthcheck_passes_behind_the_address_header(production):
    """The compose healthcheck, run against the frontend as it runs here
    (only its address differs): adapter-node with ADDRESS_HEADER answers 500
    to a request without X-Forwarded-For, so the probe must send one."""
    command = compose.healthcheck_command(compose.load(production["project"] / PROD)["services"]["frontend"])
    command = [arg.replace("http://127.0.0.1:", f"http://{production['frontend_ip']}:") for arg in command]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


@pytest.mark.full
def test_plain_http_is_redirected_to_https(production):
    proxy = production["caddy"]
    for path in ("/", "/admin/login/?next=/admin/", "/api/health/"):
        status, headers, _ = proxy.http(production["domain"], "GET", path)
        assert status in (301, 308), (path, status)
        # to the same host and path over HTTPS (whose port, here, is not the container's 443)
        location = urlsplit(headers["location"])
        assert (location.scheme, location.hostname, location.path + (location.query and "?" + location.query)) == \
            ("https", production["domain"], path), headers["location"]


@pytest.mark.full
def test_every_path_goes_to_its_tier_with_one_hsts_header(production):
    proxy, domain = production["caddy"], production["domain"]
    answers = {path: proxy.https(domain, "GET", path, headers={"Accept-Encoding": "gzip"})
               for path in ("/", "/login", "/api/health/", "/admin/login/", "/static/admin/css/base.css")}
    assert {path: status for path, (status, _, _) in answers.items()} == dict.fromkeys(answers, 200), answers
    assert answers["/api/health/"][1]["content-type"].startswith("application/json")
    _, headers, body = answers["/admin/login/"]
    assert headers["content-encoding"] == "gzip" and b"csrfmiddlewaretoken" in gzip.decompress(body)
    assert "content-security-policy" in answers["/"][1], "SvelteKit's page"
    hsts = {path: headers.get("strict-transport-security") for path, (_, headers, _) in answers.items()}
    assert set(hsts.values()) == {"max-age=31536000"}, hsts


def attempts_from(db, address: str) -> int:
    """Login attempts counted against the client `address` (personas.ratelimit keys)."""
    key = hashlib.sha256("\0".join(("login", "client", address)).encode()).hexdigest()
    output = db.psql(f"SELECT count(*) AS n FROM personas_attempt WHERE key = '{key}';", **db.app)
    return int(re.search(r"^\s*(\d+)\s*$", output, re.M).group(1))


@pytest.mark.full
def test_the_backend_counts_logins_against_the_address_caddy_saw_not_a_forged_one(production):
    """A login through Caddy from 127.0.0.77 with a forged X-Forwarded-For:
    the backend counts it against 127.0.0.77, which takes both Caddy
    replacing the client's header and the backend trusting Caddy's."""
    proxy, db = production["caddy"], production["db"]
    before = attempts_from(db, "127.0.0.77"), attempts_from(db, "203.0.113.9")
    status, _, body = proxy.https(production["domain"], "POST", "/api/auth/login/", source="127.0.0.77",
                                  headers={"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.9"},
                                  body=json.dumps({"username": "nobody", "password": "wrong-password"}).encode())
    assert status == 400, body
    assert (attempts_from(db, "127.0.0.77"), attempts_from(db, "203.0.113.9")) == (before[0] + 1, before[1])


@pytest.mark.full
def test_sign_up_log_in_and_see_me_over_https_with_secure_cookies(production, page):
    from harness.browser import log_in, sign_up
    base = production["url"]
    username, password = f"prod{uuid.uuid4().hex[:8]}", "Production-1815-xyz"
    sign_up(page, base, username, password)
    page.wait_for_url(re.compile(r"/me$"))
    page.get_by_role("button", name="Log out").click()
    log_in(page, base, username, password)
    page.wait_for_url(re.compile(r"/me$"))
    assert page.get_by_test_id("me-username").inner_text() == username
    session = next(c for c in page.context.cookies() if c["name"] == "session")
    assert session["secure"] and session["httpOnly"], session


@pytest.mark.full
def test_the_admin_works_over_the_proxy_with_secure_cookies(production, browser):
    """Django's admin over HTTPS: the login form's POST passes the CSRF
    checks (Origin and Referer against the forwarded host and scheme)."""
    base = production["url"]
    context = browser.new_context(ignore_https_errors=True)
    try:
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{base}/admin/")
        page.wait_for_url(f"{base}/admin/login/?next=/admin/")
        page.get_by_label("Username").fill(STAFF["username"])
        page.get_by_label("Password").fill(STAFF["password"])
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{base}/admin/")
        assert page.locator("#user-tools").inner_text().upper().count(STAFF["username"].upper()) == 1
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies["sessionid"]["secure"] and cookies["sessionid"]["httpOnly"], cookies["sessionid"]
        assert cookies["csrftoken"]["secure"], cookies["csrftoken"]
    finally:
        context.close()


# ---------------------------------------------------------------------------
# Full tier: observing it (request ids, JSON logs, metrics, error tracking)
# ---------------------------------------------------------------------------
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def log_lines(production, tier: str) -> list[dict]:
    """Every line `tier` wrote, each parsed as JSON (a line that is not fails here)."""
    lines = production["logs"][tier].read_text().splitlines()
    parsed = []
    for line in filter(str.strip, lines):
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"{tier} wrote a line that is not JSON: {line!r}") from None
    return parsed


def logged(production, tier: str, predicate, timeout: float = 10) -> list[dict]:
    """`tier`'s JSON lines that match, waiting for at least one (logs are written after the response)."""
    deadline = time.monotonic() + timeout
    while not (found := [line for line in log_lines(production, tier) if predicate(line)]):
        if time.monotonic() > deadline:
            raise AssertionError(f"no such line in {tier}'s log: {production['logs'][tier].read_text()[-3000:]}")
        time.sleep(0.2)
    return found


@pytest.mark.full
def test_one_request_id_runs_through_caddy_sveltekit_and_django(production):
    """Caddy replaces the id a client sent with its own; SvelteKit takes it
    from Caddy, sends it to the API for the page's calls, and each tier logs
    it; the response carries it."""
    proxy, domain = production["caddy"], production["domain"]
    forged = f"forged-{uuid.uuid4().hex[:8]}"
    status, headers, _ = proxy.https(domain, "GET", "/", headers={"X-Request-ID": forged})
    assert status == 200
    request_id = headers["x-request-id"]
    assert UUID.fullmatch(request_id), request_id
    # the home page asks the API for the system's status, under the same id
    assert logged(production, "frontend", lambda line: line.get("request_id") == request_id
                  and line.get("path") == "/" and line.get("status") == 200)
    assert {line["path"] for line in logged(production, "backend", lambda line: line.get("request_id") == request_id)} \
        == {"/api/health/"}
    assert logged(production, "caddy", lambda line: line.get("resp_headers", {}).get("X-Request-Id") == [request_id])
    for tier in ("frontend", "backend"):
        assert not [line for line in log_lines(production, tier) if line.get("request_id") == forged], tier


@pytest.mark.full
def test_the_backend_keeps_an_id_only_from_its_trusted_proxies(production):
    """From Caddy (a trusted proxy) the id is kept; straight from another
    address it is replaced, and a malformed one is replaced whoever sent it."""
    proxy, domain = production["caddy"], production["domain"]
    status, headers, _ = proxy.https(domain, "GET", "/api/health/", headers={"X-Request-ID": "from-the-client"})
    assert status == 200 and UUID.fullmatch(headers["x-request-id"]), headers
    base = f"http://{production['backend_ip']}:{recorded(production['project'])['backend_port']}"
    host = [("Host", alias(recorded(production["project"]), "backend"))]
    def request_id(given: str, source: str | None = None) -> str:
        status, headers, _ = raw_request(base, "GET", "/api/health/", headers=[*host, ("X-Request-ID", given)],
                                         source=source)
        assert status == 200, (status, headers)
        return headers["x-request-id"]

    assert UUID.fullmatch(request_id("from-elsewhere", source="127.0.0.77"))
    # 127.0.0.1 is where SvelteKit and Caddy connect from here (their aliases' address)
    assert request_id("from-sveltekit.1") == "from-sveltekit.1"
    assert UUID.fullmatch(request_id("bad id\\n{}"))


@pytest.mark.full
def test_every_tier_writes_json_lines_with_the_request_fields(production):
    proxy, domain = production["caddy"], production["domain"]
    _, headers, _ = proxy.https(domain, "GET", "/login")
    request_id = headers["x-request-id"]
    front, = logged(production, "frontend", lambda line: line.get("request_id") == request_id)
    assert {"time", "level", "request_id", "method", "path", "status", "duration_ms"} <= front.keys(), front
    assert (front["method"], front["path"], front["status"], front["level"]) == ("GET", "/login", 200, "info")
    back = logged(production, "backend", lambda line: line.get("event") == "request")[-1]
    assert {"time", "level", "request_id", "method", "path", "status", "duration_ms", "user_id"} <= back.keys(), back
    assert isinstance(back["duration_ms"], (int, float))
    # granian's own lines (its start, its workers) are JSON too
    assert logged(production, "backend", lambda line: line.get("logger") == "_granian")
    caddy_line, = logged(production, "caddy", lambda line: line.get("resp_headers", {}).get("X-Request-Id")
                         == [request_id])
    assert (caddy_line["request"]["method"], caddy_line["request"]["uri"], caddy_line["status"]) == \
        ("GET", "/login", 200)


def metric(text: str, name: str, default: float | None = None, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`
    (`default` if there is none, or fail)."""
    total, found = 0.0, False
    for match in re.finditer(rf"^{re.escape(name)}(?:{{(.*?)}})? (\S+)$", text, re.M):
        sample = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1) or ""))
        if labels.items() <= sample.items():
            total, found = total + float(match.group(2)), True
    if not found and default is not None:
        return default
    assert found, f"no {name} {labels} in:\n{text}"
    return total


@pytest.mark.full
def test_metrics_are_served_on_the_app_network_and_never_through_caddy(production):
    """The backend's /metrics sums its two granian workers; the frontend's
    are on a port of their own; Caddy routes neither."""
    proxy, domain = production["caddy"], production["domain"]
    a = recorded(production["project"])
    base = f"http://{production['backend_ip']}:{a['backend_port']}"
    host = [("Host", alias(a, "backend"))]

    def backend_metrics() -> str:
        status, headers, body = raw_request(base, "GET", "/metrics", headers=host)
        assert status == 200 and headers["content-type"].startswith("text/plain"), (status, headers)
        return body.decode()

    before = metric(backend_metrics(), "django_http_requests_total", 0, route="api/health/live/", status="200")
    for _ in range(20):  # spread over both workers
        assert proxy.https(domain, "GET", "/api/health/live/")[0] == 200
    text = backend_metrics()
    assert metric(text, "django_http_requests_total", route="api/health/live/", status="200") == before + 20
    assert metric(text, "django_http_request_duration_seconds_count", route="api/health/live/") >= 20
    assert metric(text, "django_db_connections_total") >= 1
    assert metric(text, "django_db_query_duration_seconds_count") >= 1

    with urllib.request.urlopen(production["front_metrics"], timeout=10) as response:
        front = response.read().decode()
    assert metric(front, "http_requests_total", route="/login") >= 1
    assert metric(front, "process_cpu_seconds_total") > 0

    for path in ("/metrics", "/api/../metrics", "/static/../metrics"):
        status, _, body = proxy.https(domain, "GET", path)
        assert b"django_http_requests_total" not in body and b"process_cpu" not in body, (path, status)


@pytest.mark.full
def test_a_server_error_reaches_the_error_tracker_with_its_request_id_and_nothing_secret(production):
    """A 500 of each tier (Django: a table it needs has gone; SvelteKit: a
    body it cannot parse) is sent to SENTRY_DSN with the request's id; the
    token, the cookie and the query string are not."""
    proxy, domain, db = production["caddy"], production["domain"], production["db"]
    # a token of knox's shape, so that it is looked up
    token, cookie, query = secrets.token_hex(32), uuid.uuid4().hex, uuid.uuid4().hex
    db.psql("ALTER TABLE knox_authtoken RENAME TO knox_authtoken_gone;", **db.app)
    try:
        status, headers, _ = proxy.https(domain, "GET", f"/api/auth/me/?secret={query}",
                                         headers={"Authorization": f"Token {token}", "Cookie": f"session={cookie}"})
    finally:
        db.psql("ALTER TABLE knox_authtoken_gone RENAME TO knox_authtoken;", **db.app)
    assert status == 500
    request_id = headers["x-request-id"]
    event = production["envelopes"].wait_for_event(lambda e: e.get("tags", {}).get("request_id") == request_id)
    assert "UndefinedTable" in {value["type"] for value in event["exception"]["values"]}, event["exception"]
    # SvelteKit's server: a form action whose multipart body cannot be read
    status, headers, _ = proxy.https(domain, "POST", f"/login?secret={query}", body=b"not multipart at all",
                                     headers={"Content-Type": "multipart/form-data; boundary=x",
                                              "Origin": production["url"], "Cookie": f"session={cookie}",
                                              "Authorization": f"Token {token}"})
    assert status == 500
    request_id = headers["x-request-id"]
    event = production["envelopes"].wait_for_event(lambda e: e.get("tags", {}).get("request_id") == request_id)
    assert event["platform"] == "node" and event["exception"]["values"], event
    sent = b"".join(production["envelopes"].raw).decode(errors="replace")
    # knox looks a token up by its first 15 characters: not those either
    for secret in (token, token[:15], cookie, query):
        assert secret not in sent


@pytest.mark.full
def test_the_error_trackers_sdk_loads_only_with_a_dsn(production):
    backend = production["backend"]
    probe = "import django, sys; django.setup(); print('sentry_sdk' in sys.modules)"
    outputs = [backend.run("python", "-c", probe, env=env, check=True).stdout.strip()
               for env in ({"SENTRY_DSN": ""}, {"SENTRY_DSN": production["envelopes"].dsn})]
    assert outputs == ["False", "True"]


@pytest.mark.full
def test_no_log_line_holds_a_secret_of_a_whole_account_flow(production, page, smtp):
    """Sign up, verify the address, log out and in, reset the password through
    the mailed link, log in with the new one, over HTTPS in Chromium: no tier's
    log (Caddy, SvelteKit, Django, the task worker) holds a password, the
    session's token, or a key of the mailed links; the user's id is logged."""
    from harness.browser import log_in, open_verification_link, sign_up
    base, public = production["url"], production["public_url"]
    username, password, new_password = f"obs{uuid.uuid4().hex[:8]}", "Observed-1815-xyz", "Renewed-1871-abc"
    email = f"{username}@example.com"
    sign_up(page, base, username, password)
    page.wait_for_url(re.compile(r"/me$"))
    verify_link = smtp.link(smtp.wait_for(email, "Verify your email address"), public).replace(public, base)
    open_verification_link(page, verify_link)
    page.get_by_test_id("verify-result").wait_for()
    token = next(c for c in page.context.cookies() if c["name"] == "session")["value"]
    page.goto(f"{base}/me")
    page.get_by_role("button", name="Log out").click()
    page.goto(f"{base}/forgot", wait_until="networkidle")
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Send the link").click()
    reset_link = smtp.link(smtp.wait_for(email, "password"), public).replace(public, base)
    page.goto(reset_link, wait_until="networkidle")
    page.get_by_label("New password").fill(new_password)
    page.get_by_role("button", name="Set the password").click()
    page.wait_for_url(re.compile(r"/login"))
    log_in(page, base, username, new_password)
    page.wait_for_url(re.compile(r"/me$"))
    output = production["db"].psql(f"SELECT id FROM personas_usuario WHERE username = '{username}';",
                                   **production["db"].app)
    user_id = int(re.search(r"^\s*(\d+)\s*$", output, re.M).group(1))
    secrets = {"password": password, "new password": new_password, "session token": token,
               "verification key": urlsplit(verify_link).path.rsplit("/", 1)[1],
               "reset token": urlsplit(reset_link).path.rstrip("/").rsplit("/", 1)[1]}
    for tier, path in production["logs"].items():
        text = path.read_text()
        assert [name for name, secret in secrets.items() if secret in text] == [], f"{tier}: {path}"
    assert logged(production, "backend", lambda line: line.get("user_id") == user_id
                  and line.get("path") == "/api/auth/me/")
