"""Full tier: the login and signup limits on the production server (granian,
two worker processes) over real sockets: counted in the database every
worker shares, X-Forwarded-For believed only from the frontend's alias as the
backend resolves it, and the admin's real login form (its CSRF cookie and
token) counted with the API's. What needs none of these (the account's limit
across addresses, signup's limits) is held by the generated suite's
personas/tests/test_ratelimit.py, which test_back_suite.py runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.answers import alias as answer_alias, recorded as answers
from harness.backend import Backend, raw_request
from harness.back_project import LOW_RATES, app_query


FRONTEND_ADDRESS = "127.0.0.5"  # where the frontend's alias resolves in these tests


def frontend_alias(project: Path) -> str:
    return answer_alias(answers(project), "frontend")


def post_json(base: str, path: str, body: dict, source: str, forwarded_for: str | None = None):
    headers = [("Content-Type", "application/json")]
    if forwarded_for:
        headers.append(("X-Forwarded-For", forwarded_for))
    status, response_headers, payload = raw_request(base, "POST", path, json.dumps(body).encode(), headers,
                                                    source=source)
    return status, response_headers, json.loads(payload) if payload else None


def login_from(base, source, username, password="wrong-password", forwarded_for=None):
    return post_json(base, "/api/auth/login/", {"username": username, "password": password}, source,
                     forwarded_for)


def assert_throttled(answer):
    status, headers, body = answer
    assert status == 429, (status, body)
    assert set(body) == {"detail"} and body["detail"].startswith("Request was throttled.")
    assert 1 <= int(headers["retry-after"]) <= 60


@pytest.fixture
def limited_backend(giga_backend, giga_db):
    """The production server (granian, 2 worker processes) with low limits,
    the frontend's alias resolving to FRONTEND_ADDRESS, and no attempts counted yet."""
    app_query(giga_db, "DELETE FROM personas_attempt")
    backend = Backend(giga_backend.project, giga_db, giga_backend.venv,
                      hosts={frontend_alias(giga_backend.project): FRONTEND_ADDRESS})
    with backend.serve(env=LOW_RATES) as (base, process):
        yield base, process


@pytest.mark.full
def test_login_is_limited_per_client_and_other_clients_are_not_affected(limited_backend, giga_db):
    base, _ = limited_backend
    for n in range(4):
        assert login_from(base, "127.0.0.2", f"guess{n}")[0] == 400
    assert_throttled(login_from(base, "127.0.0.2", "guess9"))
    assert login_from(base, "127.0.0.3", "guess9")[0] == 400
    # counted in the database, which every worker process shares
    assert app_query(giga_db, "SELECT count(*) FROM personas_attempt")[0][0] == 2 * 5


@pytest.mark.full
def test_forwarded_for_is_believed_only_from_the_frontend(limited_backend):
    base, _ = limited_backend
    # an untrusted client sends a new X-Forwarded-For each time: still one client
    for n in range(4):
        assert login_from(base, "127.0.2.1", f"spoof{n}", forwarded_for=f"198.51.100.{n}")[0] == 400
    assert_throttled(login_from(base, "127.0.2.1", "spoof9", forwarded_for="198.51.100.99"))
    # the frontend (its alias, DJANGO_TRUSTED_PROXIES' default) forwards two
    # browsers: each has its own count, and the last entry is the browser
    for n in range(4):
        assert login_from(base, FRONTEND_ADDRESS, f"a{n}", forwarded_for=f"10.1.1.1, 203.0.113.{n}, 198.51.100.7")[0] == 400
    assert_throttled(login_from(base, FRONTEND_ADDRESS, "a9", forwarded_for="198.51.100.7"))
    assert login_from(base, FRONTEND_ADDRESS, "a9", forwarded_for="198.51.100.8")[0] == 400


def admin_login(base: str, source: str, username: str) -> int:
    status, headers, page = raw_request(base, "GET", "/admin/login/", source=source)
    assert status == 200
    cookie = re.search(r"csrftoken=([^;]+)", headers["set-cookie"]).group(1)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
    form = f"csrfmiddlewaretoken={token}&username={username}&password=wrong-password&next=/admin/".encode()
    status, headers, page = raw_request(base, "POST", "/admin/login/", form, source=source, headers=[
        ("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", f"csrftoken={cookie}")])
    if status == 429:
        assert int(headers["retry-after"]) >= 1 and b"Too many login attempts" in page
    return status


@pytest.mark.full
def test_the_admin_login_is_limited_with_the_api_login(limited_backend):
    base, _ = limited_backend
    assert [admin_login(base, "127.0.5.1", "boss") for _ in range(3)] == [200, 200, 200]
    assert admin_login(base, "127.0.5.2", "boss") == 429  # the account, from anywhere
    assert_throttled(login_from(base, "127.0.5.3", "boss"))  # and through the API
    assert [admin_login(base, "127.0.5.1", f"x{n}") for n in range(2)] == [200, 429]  # the client
