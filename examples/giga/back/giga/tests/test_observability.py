"""Request ids, the request log line, the metrics, and what error tracking sends."""

import logging
import uuid

import pytest
from prometheus_client import REGISTRY

from ..observability import scrub

pytestmark = pytest.mark.django_db

PROXY = "10.0.0.7"


@pytest.fixture
def proxy(settings):
    settings.TRUSTED_PROXIES = [PROXY]


def request_lines(caplog):
    return [record.msg for record in caplog.records
            if record.name == "request" and isinstance(record.msg, dict)]


def test_a_trusted_proxys_id_is_kept_and_sent_back(client, proxy):
    response = client.get("/api/health/live/", HTTP_X_REQUEST_ID="caddy-1.2", REMOTE_ADDR=PROXY)
    assert response["X-Request-ID"] == "caddy-1.2"


@pytest.mark.parametrize("remote, given", [
    ("192.0.2.1", "from-anyone"),  # not a trusted proxy
    (PROXY, "two words"),  # malformed
    (PROXY, "x" * 129),  # too long
    (PROXY, ""),
])
def test_any_other_id_is_replaced(client, proxy, remote, given):
    response = client.get("/api/health/live/", HTTP_X_REQUEST_ID=given, REMOTE_ADDR=remote)
    assert str(uuid.UUID(response["X-Request-ID"])) == response["X-Request-ID"]


def test_one_line_per_request_without_the_query_string(client, user_client, user, caplog):
    caplog.set_level(logging.INFO)
    response = user_client.get("/api/auth/me/?token=secret-in-the-query")
    line, = request_lines(caplog)
    assert line["request_id"] == response["X-Request-ID"]
    assert (line["event"], line["method"], line["path"], line["status"], line["user_id"]) == \
        ("request", "GET", "/api/auth/me/", 200, user.pk)
    assert line["duration_ms"] >= 0
    assert "secret-in-the-query" not in str(line)


def test_errors_are_logged_as_errors_and_4xx_as_warnings(client, caplog):
    caplog.set_level(logging.INFO)
    client.get("/api/no-such-endpoint/")
    record, = [record for record in caplog.records if record.name == "request"]
    assert record.levelno == logging.WARNING and record.msg["user_id"] is None


def test_the_metrics_count_requests_by_route_not_by_path(client):
    def served() -> float:
        return REGISTRY.get_sample_value("django_http_requests_total", {
            "method": "GET", "route": "api/health/live/", "status": "200"}) or 0.0

    before = served()
    client.get("/api/health/live/")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert served() == before + 1
    assert b'route="api/health/live/"' in response.content


def test_what_error_tracking_sends_has_no_credentials_query_or_body():
    event = scrub({
        "request": {
            "url": "https://example.com/api/auth/me/?token=t0k3n", "query_string": "token=t0k3n",
            "cookies": {"session": "s3ss10n"}, "data": {"password": "p4ss"}, "env": {"REMOTE_ADDR": "192.0.2.1"},
            "headers": {"Authorization": "Token t0k3n", "Cookie": "session=s3ss10n", "X-Request-ID": "r1",
                        "User-Agent": "test"},
        },
        "user": {"id": 7, "email": "someone@example.com", "ip_address": "192.0.2.1"},
    }, {})
    assert event == {
        "request": {
            "url": "https://example.com/api/auth/me/",
            "headers": {"X-Request-ID": "r1", "User-Agent": "test"},
        },
        "user": {"id": 7},
    }
