import pytest
from django.core.management import call_command
from django.db import OperationalError

from personas.models import Usuario

pytestmark = pytest.mark.django_db


def test_health_counts_users_in_the_database(client, user):
    response = client.get("/api/health/")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "users": 1}


def test_health_ignores_credentials(client):
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get("/api/health/").status_code == 200


def test_health_is_503_when_the_database_fails(client, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OperationalError('connection to server at "db", port 5432 failed: Connection refused')

    monkeypatch.setattr(Usuario.objects, "count", unreachable)
    response = client.get("/api/health/")
    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "database": "unreachable",
        "detail": 'connection to server at "db", port 5432 failed: Connection refused',
    }


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
