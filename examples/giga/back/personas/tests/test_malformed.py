"""Malformed requests get a 4xx JSON answer, never a 500."""

import pytest

pytestmark = pytest.mark.django_db

DEPTH = 20_000
DEEP_BODIES = {
    "arrays": b"[" * DEPTH + b"]" * DEPTH,
    "objects": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
    "mixed": b'[{"a":' * (DEPTH // 2) + b"1" + b"}]" * (DEPTH // 2),
    "in a field": b'{"username": ' + b"[" * DEPTH + b"]" * DEPTH + b', "password": "x"}',
}


@pytest.mark.parametrize("path", ["/api/auth/login/", "/api/auth/signup/"])
@pytest.mark.parametrize("shape", DEEP_BODIES)
def test_json_nested_too_deeply_is_a_400(client, path, shape):
    response = client.post(path, data=DEEP_BODIES[shape], content_type="application/json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("JSON parse error")


@pytest.mark.parametrize("token", ["\x00", "abc\x00def", "\x01" * 64, "\x7f" * 64, "a" * 63 + "\x00",
                                   "ÿ" * 64, "A" * 64, "g" * 64, "0" * 65, "0" * 10_000])
def test_malformed_tokens_are_a_401(client, token):
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    for method in ("get", "post"):
        response = getattr(client, method)("/api/auth/me/" if method == "get" else "/api/auth/logout/")
        assert response.status_code == 401
        assert response.json() == {"detail": "Invalid token."}


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
@pytest.mark.parametrize("path", ["/api/auth/login", "/api/auth/signup", "/api/nowhere/", "/api/users/1",
                                  "/api", "/api/health"])
def test_unsafe_methods_on_unrouted_api_paths_are_a_json_404(client, method, path):
    response = getattr(client, method)(path, data=b"{}", content_type="application/json")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}
