"""Full tier: malformed requests get a JSON 4xx, never a 500, on both servers
the image runs (granian in production, runserver in dev), from the raw bytes
on the socket up (each server's own refusals included).
"""

from __future__ import annotations

import json

import pytest

from harness.backend import Backend, raw_request
from harness.back_project import LOW_RATES


SERVERS = {"granian": "", "runserver": "dev"}  # Dockerfile target of each
DEPTH = 20_000
DEEP_BODIES = {
    "arrays": b"[" * DEPTH + b"]" * DEPTH,
    "objects": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
    "mixed": b'[{"a":' * (DEPTH // 2) + b"1" + b"}]" * (DEPTH // 2),
    "in a field": b'{"username": ' + b"[" * DEPTH + b"]" * DEPTH + b', "password": "x"}',
}
# Tokens no login ever hands out. Control characters other than tab are not
# valid in an HTTP header (RFC 9110 5.5); granian refuses those itself with a
# bodiless 400 before Django sees them, runserver passes them on.
CONTROL_TOKENS = [b"\x00", b"abc\x00def", b"\x01" * 64, b"\x1f" * 64, b"\x7f" * 64, b"a" * 63 + b"\x00"]
OTHER_BAD_TOKENS = [b"\xff" * 64, b"\xc3\xa9" * 32, b"\x80", b"A" * 64, b"g" * 64, b"0" * 65, b"0" * 8000,
                    b"0" * 32 + b"\t" + b"0" * 31]
UNROUTED = ["/api/auth/login", "/api/auth/signup", "/api/nowhere/", "/api/users/1", "/api", "/api/health"]


@pytest.fixture(scope="module", params=list(SERVERS))
def any_server(request, giga_backend):
    backend = Backend(giga_backend.project, giga_backend.db, giga_backend.venv, target=SERVERS[request.param])
    with backend.serve(env=LOW_RATES | {"DJANGO_RATE_LOGIN_CLIENT": "1000/min", "DJANGO_RATE_SIGNUP_CLIENT": "1000/min"}) as (base, process):
        yield request.param, base, process
    log = process.log_path.read_text()
    assert "Traceback" not in log and "Internal Server Error" not in log, log[-5000:]


def assert_json_4xx(status, headers, body, expected_status, expected=None):
    assert status == expected_status, (status, body[:300])
    assert headers["content-type"] == "application/json", headers
    data = json.loads(body)
    assert set(data) == {"detail"}
    if expected:
        assert data == expected


@pytest.mark.full
@pytest.mark.parametrize("path", ["/api/auth/login/", "/api/auth/signup/"])
@pytest.mark.parametrize("shape", list(DEEP_BODIES))
def test_json_nested_too_deeply_is_a_400(any_server, path, shape):
    _, base, _ = any_server
    status, headers, body = raw_request(base, "POST", path, DEEP_BODIES[shape],
                                        [("Content-Type", "application/json")], source="127.0.6.1")
    assert_json_4xx(status, headers, body, 400)
    assert json.loads(body)["detail"].startswith("JSON parse error")


@pytest.mark.full
@pytest.mark.parametrize("token", CONTROL_TOKENS + OTHER_BAD_TOKENS, ids=lambda t: f"{t[:6]!r}x{len(t)}")
@pytest.mark.parametrize("method, path", [("GET", "/api/auth/me/"), ("POST", "/api/auth/logout/"),
                                          ("GET", "/api/users/")])
def test_malformed_tokens_are_a_401(any_server, token, method, path):
    server, base, _ = any_server
    status, headers, body = raw_request(base, method, path, headers=[("Authorization", b"Token " + token)])
    if server == "granian" and token in CONTROL_TOKENS:
        assert (status, body) == (400, b""), "granian's own refusal of an invalid header"
    else:
        # The detail depends on what the server hands Django (runserver strips
        # trailing \x1f, granian drops non-ASCII values): always a 401, in JSON.
        assert_json_4xx(status, headers, body, 401)


@pytest.mark.full
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", UNROUTED)
def test_unsafe_methods_on_unrouted_api_paths_are_a_json_404(any_server, method, path):
    _, base, _ = any_server
    status, headers, body = raw_request(base, method, path, b'{"username": "x"}',
                                        [("Content-Type", "application/json")])
    assert_json_4xx(status, headers, body, 404, {"detail": "Not found."})
