"""The first read of the readiness check and of every token lookup doubles as
the connection's health check (db.checking_read)."""

import psycopg
import pytest
from django.db import OperationalError, connection

from ..db import checking_read
from ..views import Migrations

# transaction=True: outside a transaction, as a served request is.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def pings(monkeypatch):
    """The CONN_HEALTH_CHECKS pings sent."""
    sent: list[bool] = []
    real_ping = connection.is_usable

    def ping() -> bool:
        sent.append(True)
        return real_ping()

    monkeypatch.setattr(connection, "is_usable", ping)
    return sent


def served(client, path):
    connection.close_if_unusable_or_obsolete()  # a server's request_started, which the test client skips
    return client.get(path)


@pytest.mark.parametrize("path, who", [("/api/health/", "client"), ("/api/auth/me/", "user_client")])
def test_the_first_read_is_the_check_and_a_dropped_connection_is_replaced(request, path, who, pings, monkeypatch):
    monkeypatch.setattr(Migrations, "all_applied", True)
    client = request.getfixturevalue(who)
    assert served(client, path).status_code == 200
    assert served(client, path).status_code == 200
    assert pings == [], "the request's own read is the connection's check: no ping before it"
    dropped = connection.connection.info.backend_pid
    with psycopg.connect(**connection.get_connection_params()) as other:
        other.execute("SELECT pg_terminate_backend(%s)", [dropped])
    assert served(client, path).status_code == 200
    assert connection.connection.info.backend_pid != dropped
    assert pings == [True], "checked once its read had failed"


def test_a_read_that_fails_on_a_sound_connection_is_not_asked_again(user_client):
    served(user_client, "/api/auth/me/")  # a connection to reuse
    connection.close_if_unusable_or_obsolete()
    asked = []

    def timed_out() -> None:
        asked.append(True)
        raise OperationalError("canceling statement due to statement timeout")

    with pytest.raises(OperationalError, match="statement timeout"):
        checking_read(timed_out)
    assert asked == [True]


def test_other_requests_keep_the_ping(client, pings):
    client.get("/api/health/")  # a connection to reuse
    connection.close_if_unusable_or_obsolete()
    response = client.post("/api/auth/login/", {"username": "nobody", "password": "a-Wrong-passw0rd"}, format="json")
    assert response.status_code == 400
    assert pings == [True]
