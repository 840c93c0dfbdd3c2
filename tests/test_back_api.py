"""Full tier: the API over HTTP on the running backend: signup, login, me,
logout, the schema and the Host header; tokens hashed at rest (in the table
and in a dump of the whole database), expiring and revoked one by one.
"""

from __future__ import annotations

import re

import pytest

from harness.backend import http
from harness.back_project import DJANGO_TABLES, alias, app_query, create_user


@pytest.mark.full
def test_api_over_http(giga_backend):
    with giga_backend.serve() as (base, _):
        assert http("GET", f"{base}/api/health/")[:2] == (200, {"status": "ok"})
        signup = {"username": "http-user", "email": "http@example.com", "password": "a-Strong-passw0rd!"}
        status, body, _ = http("POST", f"{base}/api/auth/signup/", signup)
        assert status == 201 and body["username"] == "http-user", body
        status, body, _ = http("POST", f"{base}/api/auth/signup/", signup)
        assert status == 400 and "username" in body
        status, body, _ = http("POST", f"{base}/api/auth/login/", {"username": "http-user",
                                                                    "password": signup["password"]})
        assert status == 200 and body["user"]["email"] == "http@example.com"
        token = body["token"]
        assert http("GET", f"{base}/api/auth/me/", token=token)[1]["username"] == "http-user"
        assert http("GET", f"{base}/api/users/", token=token)[0] == 403
        assert http("POST", f"{base}/api/auth/logout/", token=token)[0] == 204
        assert http("GET", f"{base}/api/auth/me/", token=token)[0] == 401
        status, body, _ = http("POST", f"{base}/api/auth/login/", raw=b"{not json")
        assert status == 400 and body["detail"].startswith("JSON parse error")
        status, text, _ = http("GET", f"{base}/api/schema/")
        assert status == 200 and text.startswith("openapi: 3")
        # SvelteKit's server calls the backend by its network alias
        assert http("GET", f"{base}/api/health/", headers={"Host": alias(giga_backend.project)})[0] == 200
        assert http("GET", f"{base}/api/health/", headers={"Host": "evil.example"})[0] == 400


def data_dump(db) -> bytes:
    """Every row of every table of the app's database, as a dump's COPY data holds it."""
    with db.connect(**db.app) as conn:
        tables = [name for (name,) in conn.execute(
            "SELECT quote_ident(table_name) FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")]
        chunks = []
        for table in tables:
            with conn.cursor().copy(f"COPY {table} TO STDOUT") as copy:
                chunks.extend(bytes(data) for data in copy)
    assert len(tables) >= len(DJANGO_TABLES)
    return b"".join(chunks)


@pytest.mark.full
def test_tokens_are_hashed_expire_and_are_revoked(giga_backend, giga_db):
    create_user(giga_backend, "token-user", "a-Strong-passw0rd!")
    with giga_backend.serve() as (base, _):
        login = {"username": "token-user", "password": "a-Strong-passw0rd!"}
        tokens = [http("POST", f"{base}/api/auth/login/", login)[1] for _ in range(3)]
        first, second, third = (body["token"] for body in tokens)
        assert all(re.fullmatch(r"[0-9a-f]{64}", body["token"]) and body["expiry"] for body in tokens)
        for token in (first, second, third):
            assert http("GET", f"{base}/api/auth/me/", token=token)[0] == 200
        # stored hashed: neither the table nor a dump of the database holds a token
        rows = app_query(giga_db, "SELECT t.* FROM knox_authtoken t JOIN personas_usuario u ON u.id = t.user_id "
                                  "WHERE u.username = 'token-user'")
        assert len(rows) == 3
        dump = data_dump(giga_db)
        for token in (first, second, third):
            assert not any(token in str(value) for row in rows for value in row)
            assert token.encode() not in dump
        # expired: 401, like any invalid token
        app_query(giga_db, "UPDATE knox_authtoken SET expiry = now() - interval '1 second' "
                           "WHERE token_key = %s", [second[:15]])
        assert http("GET", f"{base}/api/auth/me/", token=second)[:2] == (401, {"detail": "Invalid token."})
        # logout revokes this token, and only it
        assert http("POST", f"{base}/api/auth/logout/", token=first)[0] == 204
        assert http("GET", f"{base}/api/auth/me/", token=first)[:2] == (401, {"detail": "Invalid token."})
        assert http("GET", f"{base}/api/auth/me/", token=third)[0] == 200
