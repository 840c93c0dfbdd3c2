import logging

import pytest
from django.core.management import call_command
from django.db import OperationalError

from personas.models import Usuario

pytestmark = pytest.mark.django_db

LIBPQ_ERROR = 'connection to server at "db" (10.0.0.7), port 5432 failed: FATAL:  role "app_user" does not exist'


def test_health_tells_the_public_only_ok(client, user):
    response = client.get("/api/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_health_gives_staff_the_details(staff_client, user_client, user):
    assert staff_client.get("/api/health/").json() == {"status": "ok", "database": "ok", "users": 2}
    assert user_client.get("/api/health/").json() == {"status": "ok"}


@pytest.mark.parametrize("header", ["Token not-a-token", "Token " + "0" * 64, "Token a\x00b", "Bearer x", "Token"])
def test_health_ignores_bad_credentials(client, header):
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_health_is_503_with_the_reason_only_in_the_log(client, staff_client, monkeypatch, caplog):
    def unreachable(*args, **kwargs):
        raise OperationalError(LIBPQ_ERROR)

    monkeypatch.setattr(Usuario.objects, "count", unreachable)
    with caplog.at_level(logging.WARNING):
        for each in (client, staff_client):
            response = each.get("/api/health/")
            assert response.status_code == 503
            assert response.json() == {"status": "unavailable"}
    assert LIBPQ_ERROR in caplog.text


def test_other_endpoints_answer_503_when_the_database_fails(client, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr("personas.serializers.authenticate", unreachable)
    response = client.post("/api/auth/login/", {"username": "a", "password": "b"}, format="json")
    assert response.status_code == 503
    assert "database" in response.json()["detail"]


def test_openapi_schema(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    text = response.content.decode()
    assert text.startswith("openapi: 3")
    for path in ("/api/health/", "/api/auth/signup/", "/api/auth/login/", "/api/auth/logout/",
                 "/api/auth/me/", "/api/users/", "/api/users/{id}/"):
        assert f"{path}:" in text, path
    assert client.get("/api/schema/?format=json").json()["info"]["version"] == "1.0.0"


def test_openapi_schema_is_valid_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
