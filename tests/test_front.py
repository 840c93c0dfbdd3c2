"""front/: the SvelteKit app that talks only to the API.

Quick tier: the rendered front/ agrees with the answers and the dev compose.
Full tier: in a copy of the rendered front/, `npm ci`, `npm run check`,
`npm run lint`, `npm test -- --run` and `npm run build` all pass; neither the
sources nor the build carry anything of the database; and the built server
(`node build`) works against the real backend and database.
"""

from __future__ import annotations

import http.client
import json
import re
import shutil
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest
import yaml

from harness import dotenv
from harness.node import npm, shown
from harness.render import EXAMPLES, example_answers

def alias(answers: dict, tier: str) -> str:
    return f"{answers['project_slug'].replace('_', '-')}-{tier}"


# ---------------------------------------------------------------------------
# Quick tier: the rendered files, for every example
# ---------------------------------------------------------------------------
@pytest.fixture(scope="session", params=[p.stem for p in EXAMPLES])
def example(request, render) -> tuple[Path, dict]:
    answers = example_answers(request.param)
    project = render(answers)
    return project, yaml.safe_load((project / ".copier-answers.yml").read_text())


def test_front_env_points_at_the_backend_alias(example):
    project, a = example
    services = yaml.safe_load((project / "docker-compose.dev.yml").read_text())["services"]
    assert alias(a, "backend") in services["backend"]["networks"][a["network_name"]]["aliases"]
    for name in (".env", ".env.example"):
        env = dotenv.load(project / "front" / name)
        assert env["INTERNAL_API_URL"] == f"http://{alias(a, 'backend')}:{a['backend_port']}", name
        assert env["PORT"] == str(a["frontend_port"]), name
        assert env["ORIGIN"] == f"http://localhost:{a['frontend_port']}", name
        assert env["PUBLIC_PROJECT_NAME"] == a["project_name"], name


def test_front_dev_server_answers_on_the_published_port_and_alias(example):
    project, a = example
    port = a["frontend_port"]
    frontend = yaml.safe_load((project / "docker-compose.dev.yml").read_text())["services"]["frontend"]
    assert frontend["build"] == {"context": "./front", "target": "dev"}
    assert frontend["env_file"] == "front/.env"
    assert alias(a, "frontend") in frontend["networks"][a["network_name"]]["aliases"]
    assert "front_node_modules:/app/node_modules" in frontend["volumes"]

    vite = (project / "front/vite.config.ts").read_text()
    assert f"port: {port}," in vite
    hosts = re.search(r"allowedHosts: \[([^\]]*)\]", vite).group(1)
    assert {"localhost", alias(a, "frontend")} <= set(re.findall(r"'([^']+)'", hosts))

    dockerfile = (project / "front/Dockerfile").read_text()
    assert f'"--host", "0.0.0.0", "--port", "{port}"' in dockerfile
    assert f"EXPOSE {port}" in dockerfile
    assert re.search(r"^FROM node:\d+-slim AS base$", dockerfile, re.M)
    assert re.search(r"^FROM base AS dev$", dockerfile, re.M)
    assert dockerfile.rstrip().endswith('CMD ["node", "build"]')


def test_front_holds_no_jinja_and_only_plain_svelte(example):
    project, _ = example
    front = project / "front"
    files = [p for p in front.rglob("*") if p.is_file()]
    assert not [p for p in files if p.suffix == ".jinja"]
    # Nothing rendered leaves a Jinja statement behind in the config files.
    for name in ("vite.config.ts", ".env", ".env.example", "Dockerfile", "package.json"):
        text = (front / name).read_text()
        assert not re.search(r"\{\{|\}\}|\{%|%\}", text), name
    assert json.loads((front / "package.json").read_text())["name"] == "frontend"
    assert json.loads((front / "package-lock.json").read_text())["name"] == "frontend"


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
    db_env = dotenv.load(giga_project / "db/.env")
    back_env = dotenv.load(giga_project / "back/.env")
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

    def __init__(self, base_url: str):
        self.origin, self.cookies = base_url, {}
        self.netloc = urllib.parse.urlsplit(base_url).netloc

    def request(self, method: str, path: str, form: dict | None = None, origin: bool = True):
        connection = http.client.HTTPConnection(self.netloc, timeout=30)
        headers = {"Accept": "text/html"}
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
def test_home_page_shows_the_real_system_status(stack):
    status, _, html = Browser(stack.front_url).request("GET", "/")
    assert status == 200
    assert (text(html, "api-status"), text(html, "db-status")) == ("ok", "ok")
    assert text(html, "user-count") == str(user_count(stack))
    assert "<title>Giga</title>" in html
    assert stack.api_url.split("//")[1] not in html and "giga-backend" not in html, \
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
    status, headers, _ = browser.request("POST", "/logout", {})
    assert (status, headers["Location"]) == (303, "/") and "session" not in browser.cookies
    assert stack.db.query("SELECT count(*) FROM knox_authtoken t JOIN personas_usuario u ON u.id = t.user_id"
                          " WHERE u.username = %s", params=[name], **stack.db.app) == [(0,)], \
        "logging out deletes the API token"
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
