"""The API, browsable and typed: its OpenAPI schema says what it does.

Quick tier: `make api-types` and the project's CI run the same dump and
generation as harness.api_schema.

Full tier:
* the committed schema and TypeScript types (front/src/lib/api/) are what the
  rendered code generates, whatever the answers (drift test);
* schemathesis fuzzes the rendered backend, served natively against a real
  PostgreSQL, from its own schema: no 500s, and every answer (status code,
  content type, headers, body) is one the schema documents;
* Swagger UI (/api/docs/) renders in Chromium under the backend's own
  Content-Security-Policy, every operation listed, no violation reported.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness import make
from harness.answers import recorded
from harness.api_schema import DUMP, SCHEMA, TYPES, generate, git_diff
from harness.backend import Backend, http, raw_request
from harness.python import venv_for

# Answers that reach the committed files if anything does: the title is the
# project's name (quotes, a backslash, non-ASCII), the messages its language.
ODD_ANSWERS = {"project_name": 'Ñandú "Nube" \\ Dos', "project_slug": "nandu", "language_code": "es"}


# ===========================================================================
# Quick tier
# ===========================================================================
def test_make_api_types_dumps_the_schema_then_generates_the_types(giga_project):
    commands = make.commands(giga_project, "api-types")
    dump, move, generate_types = commands
    assert dump[:2] == ["docker", "exec"] and tuple(dump[3:-2]) == DUMP
    assert dump[-2:] == [">", f"{SCHEMA}.tmp"]
    assert move == ["mv", f"{SCHEMA}.tmp", str(SCHEMA)]
    assert generate_types[:2] == ["docker", "compose"] and generate_types[-5:] == ["exec", "frontend", "npm", "run", "gen:api"]
    scripts = json.loads((giga_project / "front/package.json").read_text())["scripts"]
    out = shlex.split(scripts["gen:api"])
    assert out[0] == "openapi-typescript" and str(SCHEMA.relative_to("front")) in out
    assert str(TYPES.relative_to("front")) in out


def test_ci_fails_when_the_committed_contract_drifts(giga_project):
    jobs = yaml.safe_load((giga_project / ".github/workflows/ci.yml").read_text())["jobs"]
    back = "\n".join(step.get("run", "") for step in jobs["back"]["steps"])
    assert f"{shlex.join(DUMP)} > ../{SCHEMA}" in back
    assert f"git diff --exit-code -- ../{SCHEMA}" in back
    front = [step.get("run", "") for step in jobs["front"]["steps"]]
    check = f"npm run gen:api && git diff --exit-code -- ./{TYPES.parent.relative_to('front')}"
    assert check in front and front.index(check) == front.index("npm ci") + 1


# ===========================================================================
# Full tier
# ===========================================================================
@pytest.mark.full
@pytest.mark.parametrize("answers", [None, ODD_ANSWERS], ids=["giga", "odd-answers"])
def test_committed_contract_is_what_the_code_generates(answers, giga_project, render, front_installed):
    project = giga_project if answers is None else render(answers)
    generated = generate(project, front_installed)
    for path, text in generated.items():
        committed = (project / path).read_text()
        assert committed == text, (f"{path} differs from what the code generates; run scripts/api-types "
                                   f"(make api-types in a project)\n" + git_diff(committed, text, str(path)))


@pytest.fixture(scope="module")
def migrated(giga_project, giga_db) -> Backend:
    """giga_project's backend, its tables migrated into giga_db."""
    backend = Backend(giga_project, giga_db, venv_for(giga_project / "back"))
    backend.manage("migrate", "--noinput", check=True)
    return backend


# The fuzzer trips the login and signup limits at once: raised for the run
# (429 is documented where it can happen; test_back_limits checks the limits).
FUZZ_RATES = {f"DJANGO_RATE_{name}": "100000/min" for name in
              ("LOGIN_CLIENT", "LOGIN_ACCOUNT", "SIGNUP_CLIENT", "SIGNUP_ACCOUNT")}
# Mails the API sends during the run go to the log, not to a server.
FUZZ_ENV = {**FUZZ_RATES, "EMAIL_URL": "console://"}
FUZZER = {"username": "fuzz-staff", "email": "fuzz@example.com", "password": "Fuzz-pass-12345"}
CHECKS = ("not_a_server_error", "status_code_conformance", "content_type_conformance",
          "response_headers_conformance", "response_schema_conformance")


def ensure_staff(backend: Backend) -> None:
    backend.manage("shell", "-c", "from personas.models import Usuario; "
                   f"Usuario.objects.filter(username={FUZZER['username']!r}).exists() or "
                   f"Usuario.objects.create_superuser(**{FUZZER!r})", check=True)


def schemathesis(base: str, token: str, *selection: str, seconds: int, tmp_path: Path) -> subprocess.CompletedProcess:
    """`st run` over the served schema: at most 25 examples an operation
    and `seconds` in all, the same cases every run."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "st"), "run", f"{base}/api/schema/?format=json",
         "--checks", ",".join(CHECKS), "--max-examples", "25",
         "--generation-deterministic", "--max-time", str(seconds), "--request-timeout", "10", "--workers", "1",
         "--header", f"Authorization: Token {token}", "--report-dir", str(tmp_path), *selection],
        capture_output=True, text=True, timeout=400, cwd=tmp_path)


@pytest.mark.full
def test_fuzzing_finds_no_server_error_and_nothing_the_schema_does_not_say(migrated, tmp_path):
    # The production server (granian, production settings).
    backend = migrated
    ensure_staff(backend)
    with backend.serve(env=FUZZ_ENV) as (base, process):
        status, body, _ = http("POST", f"{base}/api/auth/login/",
                               {"username": FUZZER["username"], "password": FUZZER["password"]})
        assert status == 200, body
        # Logout revokes the token the others use: it goes last, on its own.
        runs = [schemathesis(base, body["token"], "--exclude-path", "/api/auth/logout/", seconds=60,
                             tmp_path=tmp_path),
                schemathesis(base, body["token"], "--include-path", "/api/auth/logout/", seconds=15,
                             tmp_path=tmp_path)]
    log = process.log_path.read_text()
    for run in runs:
        assert run.returncode == 0, run.stdout[-8000:] + run.stderr[-2000:]
        # Every selected operation was tested, with cases that all passed.
        selected = re.search(r"Selected: (\d+)/\d+\s+Tested: (\d+)", run.stdout)
        assert selected and selected[1] == selected[2], run.stdout[-3000:]
        cases = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
        assert cases and int(cases[1]) > 0 and cases[1] == cases[2], run.stdout[-3000:]
    assert "Traceback" not in log and "Internal Server Error" not in log, log[-5000:]


@pytest.mark.full
def test_swagger_ui_and_the_admin_render_under_the_backends_csp(migrated):
    from playwright.sync_api import sync_playwright
    from harness.browser import CHROMIUM, CHROMIUM_ARGS, REPORT_CSP_VIOLATIONS

    # The development server (DEBUG: docs for anyone, static files served).
    backend = Backend(migrated.project, migrated.db, migrated.venv, target="dev")
    ensure_staff(backend)
    # Login attempts from this address (the fuzzer's) would limit the admin's login.
    backend.manage("shell", "-c", "from personas.models import Attempt; Attempt.objects.all().delete()", check=True)
    with backend.serve() as (base, _):
        status, schema, _ = http("GET", f"{base}/api/schema/?format=json")
        assert status == 200
        operations = sum(len(methods) for methods in schema["paths"].values())
        problems, requests = [], []
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = chromium.new_page()
                page.add_init_script(REPORT_CSP_VIOLATIONS)
                # A failed load is reported below with its URL.
                page.on("console", lambda m: m.type == "error" and not m.text.startswith("Failed to load resource")
                        and problems.append(m.text))
                page.on("response", lambda r: r.status >= 400 and not r.url.endswith("/favicon.ico")
                        and problems.append(f"{r.status} {r.url}"))
                page.on("pageerror", lambda e: problems.append(str(e)))
                page.on("request", lambda r: requests.append(r.url))
                response = page.goto(f"{base}/api/docs/")
                assert "script-src 'self'" in response.headers["content-security-policy"]
                page.wait_for_selector(".opblock", timeout=20_000)
                page.wait_for_load_state("networkidle")
                listed = page.locator(".opblock").count()
                title = page.locator(".info .title").inner_text()
                # The token scheme: Swagger UI offers to send `Authorization: Token ...`.
                authorize = page.locator(".auth-wrapper .authorize").count()
                # The admin lives under the same policy: its login and index too.
                page.goto(f"{base}/admin/login/")
                page.fill("#id_username", FUZZER["username"])
                page.fill("#id_password", FUZZER["password"])
                page.click("input[type=submit]")
                page.wait_for_url(f"{base}/admin/")
                page.wait_for_load_state("networkidle")
            finally:
                chromium.close()
    assert listed == operations, (listed, operations)
    assert title.startswith(schema["info"]["title"])
    assert authorize == 1
    assert problems == []
    # Nothing from anywhere else: no CDN.
    assert all(url.startswith(base) or url.startswith("data:") for url in requests), requests


@pytest.mark.full
def test_docs_are_for_staff_in_production_and_the_schema_for_anyone(migrated):
    # Production settings, with back/.env's DJANGO_DEBUG=1 as shipped:
    # production.py decides, not the development switch.
    production = {"DJANGO_SETTINGS_MODULE": f"{recorded(migrated.project)['project_slug']}.production",
                  "DJANGO_ALLOWED_HOSTS": "api.example.com", "EMAIL_URL": "smtp://localhost"}
    assert migrated.environment()["DJANGO_DEBUG"] == "1"
    with migrated.serve(env=production) as (base, _):
        status, headers, body = raw_request(base, "GET", "/api/docs/")
        schema_status, schema, _ = http("GET", f"{base}/api/schema/?format=json")
    assert (status, headers.get("location")) == (302, "/admin/login/?next=/api/docs/"), (status, headers, body[:300])
    assert schema_status == 200 and "/api/auth/login/" in schema["paths"]
