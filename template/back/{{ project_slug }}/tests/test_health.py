import logging

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection
from django.db.migrations.recorder import MigrationRecorder

from personas.models import Usuario

from ..views import Migrations

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

    monkeypatch.setattr(connection, "ensure_connection", unreachable)
    with caplog.at_level(logging.WARNING):
        for each in (client, staff_client):
            response = each.get("/api/health/")
            assert response.status_code == 503
            assert response.json() == {"status": "unavailable"}
    assert LIBPQ_ERROR in caplog.text
    monkeypatch.undo()  # the test's own rollback needs the connection back


def test_staffs_count_fails_like_the_rest(staff_client, monkeypatch, caplog):
    def unreachable(*args, **kwargs):
        raise OperationalError(LIBPQ_ERROR)

    monkeypatch.setattr(Usuario.objects, "count", unreachable)
    with caplog.at_level(logging.WARNING):
        response = staff_client.get("/api/health/")
    assert response.status_code == 503 and response.json() == {"status": "unavailable"}
    assert LIBPQ_ERROR in caplog.text


def test_live_answers_without_the_database(client, staff_client, django_assert_num_queries, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OperationalError(LIBPQ_ERROR)

    with django_assert_num_queries(0):
        # no connection either (the capture itself opens one first)
        monkeypatch.setattr(connection, "ensure_connection", unreachable)
        for each in (client, staff_client):
            response = each.get("/api/health/live/")
            assert response.status_code == 200
            assert response.json() == {"status": "ok"}
    assert client.get("/api/health/").status_code == 503, "readiness needs the database"
    monkeypatch.undo()


@pytest.fixture
def migrations_unknown(monkeypatch):
    """The process as freshly started: not yet seen all migrations applied."""
    monkeypatch.setattr(Migrations, "all_applied", False)


def test_ready_is_503_while_a_migration_is_unapplied(client, staff_client, migrations_unknown, caplog):
    # Recorded as unapplied in django_migrations (the table migrate reads),
    # inside the test's transaction: rolled back afterwards.
    recorder = MigrationRecorder(connection)
    last = max(name for app, name in recorder.applied_migrations() if app == "personas")
    recorder.record_unapplied("personas", last)
    with caplog.at_level(logging.WARNING):
        for each in (client, staff_client):
            response = each.get("/api/health/")
            assert response.status_code == 503
            assert response.json() == {"status": "unavailable"}
    assert f"1 migration(s) unapplied: personas.{last}" in caplog.text
    assert not Migrations.all_applied
    assert client.get("/api/health/live/").status_code == 200
    # migrate recorded it again: ready, without a restart
    recorder.record_applied("personas", last)
    assert client.get("/api/health/").json() == {"status": "ok"}
    assert Migrations.all_applied


def test_ready_remembers_that_all_migrations_are_applied(client, migrations_unknown, django_assert_max_num_queries,
                                                          django_assert_num_queries):
    with django_assert_max_num_queries(10):
        assert client.get("/api/health/").status_code == 200
    assert Migrations.all_applied
    # from then on, for the public: one query, on no table
    with django_assert_num_queries(1) as captured:
        assert client.get("/api/health/").status_code == 200
    assert captured.captured_queries[0]["sql"] == "SELECT 1"


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
    for path in ("/api/health/", "/api/health/live/", "/api/auth/signup/", "/api/auth/login/", "/api/auth/logout/",
                 "/api/auth/me/", "/api/users/", "/api/users/{id}/"):
        assert f"{path}:" in text, path
    assert client.get("/api/schema/?format=json").json()["info"]["version"] == "1.0.0"


def test_openapi_schema_is_valid_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))
