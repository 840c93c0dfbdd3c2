"""front/: the SvelteKit app that talks only to the API.

Quick tier: the rendered front/ agrees with the answers and the dev compose.
Full tier: in a copy of the rendered front/, `npm ci`, `npm run check`,
`npm run lint`, `npm test -- --run` and `npm run build` all pass; neither the
sources nor the build carry anything of the database; and the built server
(`node build`) does what the API contract says against a stand-in API.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from harness import dotenv
from harness.render import EXAMPLES, example_answers

NPM_TIMEOUT = 900


def alias(answers: dict, tier: str) -> str:
    return f"{answers['project_slug'].replace('_', '-')}-{tier}"


def npm(cwd: Path, *args: str, timeout: float = NPM_TIMEOUT) -> subprocess.CompletedProcess:
    if shutil.which("npm") is None:
        pytest.fail("npm is not installed (scripts/bootstrap installs it)")
    return subprocess.run(
        ["npm", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "CI": "true", "NO_COLOR": "1", "FORCE_COLOR": "0",
             "npm_config_audit": "false", "npm_config_fund": "false",
             "npm_config_update_notifier": "false"},
    )


def shown(result: subprocess.CompletedProcess) -> str:
    return f"$ {' '.join(map(str, result.args))} -> {result.returncode}\n{result.stdout[-8000:]}\n{result.stderr[-8000:]}"


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
# Full tier: npm in a copy of the rendered front/
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def front(giga_project, tmp_path_factory) -> Path:
    """A private copy of giga_project's front/: npm writes node_modules and build/ into it."""
    engines = json.loads((giga_project / "front/package.json").read_text())["engines"]["node"]
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    major, minor = map(int, node.lstrip("v").split(".")[:2])
    if (major, minor) < (20, 19):
        pytest.fail(f"node {node} is too old for front/ (engines: {engines}; Vite 8 needs >= 20.19)")
    dest = tmp_path_factory.mktemp("front") / "front"
    shutil.copytree(giga_project / "front", dest)
    return dest


@pytest.fixture(scope="module")
def npm_ci(front) -> subprocess.CompletedProcess:
    return npm(front, "ci")


@pytest.fixture(scope="module")
def installed(front, npm_ci) -> Path:
    if npm_ci.returncode != 0:
        pytest.fail(f"npm ci failed:\n{shown(npm_ci)}")
    return front


@pytest.fixture(scope="module")
def built(installed) -> Path:
    result = npm(installed, "run", "build")
    if result.returncode != 0:
        pytest.fail(f"npm run build failed:\n{shown(result)}")
    return installed


@pytest.mark.full
def test_npm_ci_installs_exactly_the_lockfile(front, npm_ci):
    assert npm_ci.returncode == 0, shown(npm_ci)
    assert (front / "node_modules/.bin/vite").exists()
    lock = json.loads((front / "package-lock.json").read_text())
    package = json.loads((front / "package.json").read_text())
    assert lock["packages"][""]["devDependencies"] == package["devDependencies"]
    pinned = {**package.get("dependencies", {}), **package["devDependencies"]}
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", v) for v in pinned.values()), pinned
    assert pinned["@sveltejs/kit"].startswith("2."), "Kit 3 needs Node >= 22.17"


@pytest.mark.full
def test_npm_run_check(installed):
    result = npm(installed, "run", "check")
    assert result.returncode == 0, shown(result)
    assert "0 errors" in result.stdout, shown(result)


@pytest.mark.full
def test_npm_run_lint(installed):
    result = npm(installed, "run", "lint")
    assert result.returncode == 0, shown(result)


@pytest.mark.full
def test_npm_test(installed):
    result = npm(installed, "test", "--", "--run")
    assert result.returncode == 0, shown(result)
    passed = re.search(r"Tests\s+(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) > 0, shown(result)
    assert "failed" not in result.stdout.split("Test Files", 1)[-1], shown(result)


@pytest.mark.full
def test_npm_run_build(built):
    assert (built / "build/index.js").is_file()
    assert (built / "build/handler.js").is_file()
    assert list((built / "build/client/_app/immutable").rglob("*.js"))


@pytest.mark.full
def test_other_answers_still_check_and_lint(render, installed, tmp_path):
    """The templated files (vite.config.ts above all) stay valid and prettier-clean for other names and ports."""
    for path in EXAMPLES:
        if path.stem == "giga":
            continue
        front = tmp_path / path.stem
        shutil.copytree(render(example_answers(path.stem)) / "front", front)
        (front / "node_modules").symlink_to(installed / "node_modules")
        for script in ("check", "lint"):
            result = npm(front, "run", script)
            assert result.returncode == 0, f"{path.stem}: {shown(result)}"


@pytest.mark.full
def test_no_database_secret_or_name_in_front_or_its_build(giga_project, built):
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

    searched = files(giga_project / "front") + files(built / "build")
    assert any(p.name == "index.js" for p in searched) and any(p.name == "+page.svelte" for p in searched)
    found = [f"{p}: {what}" for p in searched for what, needle in needles.items()
             if needle.encode() in p.read_bytes()]
    assert not found, found


# ---------------------------------------------------------------------------
# Full tier: the built server against a stand-in API
# ---------------------------------------------------------------------------
class StandInApi:
    """The API contract (docs/api-contract.md), in memory, on 127.0.0.1."""

    def __init__(self):
        self.users = {"admin": {"password": "admin-pass-123", "email": "admin@x.test", "is_staff": True}}
        self.users |= {f"user{i:02}": {"password": "x", "email": "", "is_staff": False} for i in range(44)}
        self.tokens: dict[str, str] = {}
        self.database_up = True
        self.logged_out: list[str] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send(self, status: int, body=None):
                data = b"" if body is None else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def token(self) -> str | None:
                header = self.headers.get("Authorization", "")
                return header[len("Token "):] if header.startswith("Token ") else None

            def do_GET(self):
                user = api.tokens.get(self.token() or "")
                if self.path == "/api/health/":
                    if api.database_up:
                        return self.send(200, {"status": "ok", "database": "ok", "users": len(api.users)})
                    return self.send(503, {"status": "unavailable", "database": "unreachable",
                                           "detail": "connection refused"})
                if self.path == "/api/auth/me/":
                    return self.send(200, api.user(user)) if user else self.send(401, {"detail": "Invalid token."})
                if match := re.fullmatch(r"/api/users/\?page=(\d+)", self.path):
                    if not user:
                        return self.send(401, {"detail": "Authentication credentials were not provided."})
                    if not api.users[user]["is_staff"]:
                        return self.send(403, {"detail": "You do not have permission to perform this action."})
                    page, names = int(match.group(1)), sorted(api.users)
                    chunk = names[(page - 1) * 20:page * 20]
                    if page < 1 or not chunk:
                        return self.send(404, {"detail": "Invalid page."})
                    return self.send(200, {"count": len(names),
                                           "next": "n" if page * 20 < len(names) else None,
                                           "previous": "p" if page > 1 else None,
                                           "results": [api.user(n) for n in chunk]})
                self.send(404, {"detail": "Not found."})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if self.path == "/api/auth/signup/":
                    errors = {}
                    if body.get("username") in api.users:
                        errors["username"] = ["A user with that username already exists."]
                    if len(body.get("password", "")) < 8:
                        errors["password"] = ["This password is too short. It must contain at least 8 characters."]
                    if errors:
                        return self.send(400, errors)
                    api.users[body["username"]] = {"password": body["password"], "email": body["email"],
                                                   "is_staff": False}
                    return self.send(201, api.user(body["username"]))
                if self.path == "/api/auth/login/":
                    user = api.users.get(body.get("username"))
                    if not user or user["password"] != body.get("password"):
                        return self.send(400, {"non_field_errors": ["Unable to log in with provided credentials."]})
                    token = secrets.token_hex(20)
                    api.tokens[token] = body["username"]
                    return self.send(200, {"token": token, "user": api.user(body["username"])})
                if self.path == "/api/auth/logout/":
                    token = self.token()
                    if token not in api.tokens:
                        return self.send(401, {"detail": "Invalid token."})
                    api.logged_out.append(api.tokens.pop(token))
                    return self.send(204)
                self.send(404, {"detail": "Not found."})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def user(self, name: str) -> dict:
        u = self.users[name]
        return {"id": sorted(self.users).index(name) + 1, "username": name, "email": u["email"],
                "is_staff": u["is_staff"], "date_joined": "2025-01-01T00:00:00Z"}

    def stop(self):
        if self.server.socket.fileno() != -1:
            self.server.shutdown()
            self.server.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Browser:
    """Just enough of a browser: HTML requests, form POSTs with Origin, one cookie jar."""

    def __init__(self, port: int):
        self.port, self.origin, self.cookies = port, f"http://localhost:{port}", {}

    def request(self, method: str, path: str, form: dict | None = None, origin: bool = True):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        headers = {"Accept": "text/html", "Host": f"localhost:{self.port}"}
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


@pytest.fixture
def served(built):
    """`node build` with the rendered .env's settings, the API replaced by a stand-in."""
    api = StandInApi()
    port = free_port()
    env = {**os.environ, **dotenv.load(built / ".env"), "INTERNAL_API_URL": api.url,
           "PORT": str(port), "HOST": "127.0.0.1", "ORIGIN": f"http://localhost:{port}"}
    server = subprocess.Popen(["node", "build"], cwd=built, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    browser = Browser(port)
    deadline = time.monotonic() + 30
    while True:
        try:
            if browser.request("GET", "/healthz")[0] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            pytest.fail(f"node build did not start:\n{server.communicate()[0]}")
        time.sleep(0.2)
    yield api, browser
    server.terminate()
    server.wait(timeout=10)
    api.stop()


@pytest.mark.full
def test_home_page_shows_the_system_status_in_every_state(served):
    api, browser = served
    status, _, html = browser.request("GET", "/")
    assert status == 200
    assert (text(html, "api-status"), text(html, "db-status"), text(html, "user-count")) == ("ok", "ok", "45")
    assert "<title>Giga</title>" in html

    api.database_up = False
    status, _, html = browser.request("GET", "/")
    assert status == 200
    assert (text(html, "api-status"), text(html, "db-status"), text(html, "user-count")) == (
        "degraded", "unreachable", "unknown")
    assert text(html, "system-state").startswith("Degraded")

    api.stop()
    status, _, html = browser.request("GET", "/")
    assert status == 200
    assert (text(html, "api-status"), text(html, "db-status")) == ("down", "unknown")
    assert api.url.split("//")[1] not in html, "the API's address must not reach the browser"


@pytest.mark.full
def test_signup_login_me_users_logout(served):
    api, browser = served
    status, headers, _ = browser.request("GET", "/me")
    assert (status, headers["Location"]) == (303, "/login?next=%2Fme")

    status, _, html = browser.request("POST", "/signup", {"username": "admin", "email": "a@x.test",
                                                          "password": "short"})
    assert status == 400
    assert text(html, "error-username") == "A user with that username already exists."
    assert text(html, "error-password").startswith("This password is too short.")
    assert "short" not in re.findall(r'value="([^"]*)"', html)

    status, headers, _ = browser.request("POST", "/signup", {"username": "ada", "email": "ada@x.test",
                                                             "password": "long-enough-1"})
    assert (status, headers["Location"]) == (303, "/me")
    cookie = next(c for c in headers.get_all("Set-Cookie") if c.startswith("session="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    status, _, html = browser.request("GET", "/me")
    assert status == 200 and text(html, "me-username") == "ada"

    status, _, html = browser.request("GET", "/users")
    assert status == 403 and text(html, "error-status") == "403"

    status, headers, _ = browser.request("POST", "/logout", {})
    assert (status, headers["Location"]) == (303, "/")
    assert api.logged_out == ["ada"] and "session" not in browser.cookies

    status, _, html = browser.request("POST", "/login?next=%2Fusers%3Fpage%3D2",
                                      {"username": "admin", "password": "wrong"})
    assert status == 400
    assert text(html, "error-form") == "Unable to log in with provided credentials."
    status, headers, _ = browser.request("POST", "/login?next=%2Fusers%3Fpage%3D2",
                                         {"username": "admin", "password": "admin-pass-123"})
    assert (status, headers["Location"]) == (303, "/users?page=2")
    status, _, html = browser.request("GET", "/users?page=2")
    assert status == 200
    assert html.count('data-testid="user-row"') == 20
    assert 'data-testid="page-prev"' in html and 'data-testid="page-next"' in html
    status, _, html = browser.request("GET", "/users?page=3")
    assert html.count('data-testid="user-row"') == 6 and 'data-testid="page-next"' not in html


@pytest.mark.full
def test_cross_site_form_posts_are_refused(served):
    _, browser = served
    status, _, _ = browser.request("POST", "/login", {"username": "admin", "password": "x"}, origin=False)
    assert status == 403


# ---------------------------------------------------------------------------
# Full tier: the built server against the real backend and database
# ---------------------------------------------------------------------------
@pytest.mark.full
def test_front_against_the_rendered_backend_and_database(giga_project, built, fresh_db_server, tmp_path):
    """front/ -> back/ -> db/ as compose wires them: the backend is reached by
    its network alias (resolved to loopback in a private /etc/hosts), the
    frontend never sees the database, and a database outage shows as degraded."""
    from harness.django import Backend, venv_for
    from harness.hosts import with_hosts

    db = fresh_db_server(giga_project)
    backend = Backend(giga_project, db, venv_for(giga_project / "back"))
    backend.manage("migrate", "--noinput", check=True)
    backend.manage("shell", "-c", "from django.contrib.auth import get_user_model as m; "
                   "m().objects.create_superuser('boss', 'boss@x.test', 'Boss-pass-12345')", check=True)
    api_port, port = free_port(), free_port()
    with backend.serve(port=api_port):
        env = {**os.environ, **dotenv.load(built / ".env"), "PORT": str(port), "HOST": "127.0.0.1",
               "INTERNAL_API_URL": f"http://giga-backend:{api_port}", "ORIGIN": f"http://localhost:{port}"}
        log = (tmp_path / "front.log").open("w")
        server = subprocess.Popen([*with_hosts({"giga-backend": "127.0.0.1"}), "node", "build"],
                                  cwd=built, env=env, stdout=log, stderr=subprocess.STDOUT)
        browser = Browser(port)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if browser.request("GET", "/healthz")[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline and server.poll() is None, (tmp_path / "front.log").read_text()
                time.sleep(0.2)

            status, _, html = browser.request("GET", "/")
            assert (status, text(html, "api-status"), text(html, "db-status"), text(html, "user-count")) == (
                200, "ok", "ok", "1")

            status, _, html = browser.request("POST", "/signup", {"username": "boss", "email": "b2@x.test",
                                                                  "password": "Xy-12345-long"})
            assert (status, text(html, "error-username")) == (400, "A user with that username already exists.")
            status, _, html = browser.request("POST", "/signup", {"username": "ada", "email": "ada@x.test",
                                                                  "password": "123"})
            assert status == 400 and text(html, "error-password"), html

            status, headers, _ = browser.request("POST", "/signup", {"username": "ada", "email": "ada@x.test",
                                                                     "password": "Lovelace-1815-xyz"})
            assert (status, headers["Location"]) == (303, "/me")
            status, _, html = browser.request("GET", "/me")
            assert (status, text(html, "me-username")) == (200, "ada")
            assert browser.request("GET", "/users")[0] == 403
            assert browser.request("POST", "/logout", {})[0] == 303 and not browser.cookies

            status, _, html = browser.request("POST", "/login", {"username": "boss", "password": "nope"})
            assert (status, text(html, "error-form")) == (400, "Unable to log in with provided credentials.")
            status, headers, _ = browser.request("POST", "/login?next=%2Fusers",
                                                 {"username": "boss", "password": "Boss-pass-12345"})
            assert (status, headers["Location"]) == (303, "/users")
            status, _, html = browser.request("GET", "/users")
            assert status == 200 and html.count('data-testid="user-row"') == 2

            db.stop()
            started = time.monotonic()
            status, _, html = browser.request("GET", "/")
            assert (status, text(html, "api-status"), text(html, "db-status")) == (200, "degraded", "unreachable")
            assert time.monotonic() - started < 15
        finally:
            server.terminate()
            server.wait(timeout=10)
            log.close()
