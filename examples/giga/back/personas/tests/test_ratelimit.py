"""Brute-force limits of login (API and admin) and signup, per client and per account."""

import pytest
from django.test import Client

from personas.models import Attempt
from personas.ratelimit import client_address, parse_rate

pytestmark = pytest.mark.django_db

PROXY = "10.9.0.2"


@pytest.fixture(autouse=True)
def limits(settings):
    settings.RATE_LIMITS = {"login_client": "4/min", "login_account": "3/min",
                            "signup_client": "3/hour", "signup_account": "2/min"}
    settings.TRUSTED_PROXIES = [PROXY]


def login(client, username="ana", password="wrong", **extra):
    return client.post("/api/auth/login/", {"username": username, "password": password}, format="json", **extra)


def signup(client, username, **extra):
    return client.post("/api/auth/signup/", {"username": username, "email": "x@example.com", "password": "x"},
                       format="json", **extra)


def assert_throttled(response):
    assert response.status_code == 429
    assert response.json()["detail"].startswith("Request was throttled.")
    assert 1 <= int(response["Retry-After"]) <= 3600


def test_the_account_limit_holds_across_client_addresses(client, user, password):
    for n in range(3):
        assert login(client, REMOTE_ADDR=f"10.0.0.{n}").status_code == 400
    assert_throttled(login(client, REMOTE_ADDR="10.0.0.9"))
    # even with the right password, and whatever the case of the username
    assert_throttled(login(client, "ANA", password, REMOTE_ADDR="10.0.0.10"))
    assert login(client, "someone-else", REMOTE_ADDR="10.0.0.11").status_code == 400


def test_the_client_limit_holds_across_accounts_and_spares_other_clients(client, user, password):
    for n in range(4):
        assert login(client, f"guess{n}", REMOTE_ADDR="10.0.1.1").status_code == 400
    assert_throttled(login(client, "guess9", REMOTE_ADDR="10.0.1.1"))
    assert login(client, "ana", password, REMOTE_ADDR="10.0.1.2").status_code == 200


def test_refused_attempts_are_not_counted(client):
    for _ in range(3):
        login(client)
    for _ in range(5):
        assert_throttled(login(client))
    assert Attempt.objects.count() == 6  # 3 attempts x (client, account)


def test_signup_is_limited(client):
    for n in range(2):
        assert signup(client, "taken", REMOTE_ADDR=f"10.0.2.{n}").status_code == 400
    assert_throttled(signup(client, "taken", REMOTE_ADDR="10.0.2.9"))
    for n in range(3):
        assert signup(client, f"name{n}", REMOTE_ADDR="10.0.3.1").status_code == 400
    assert_throttled(signup(client, "name9", REMOTE_ADDR="10.0.3.1"))


def test_the_admin_login_shares_the_login_limits(client, user):
    admin = Client()
    for _ in range(2):
        assert login(client).status_code == 400
    response = admin.post("/admin/login/", {"username": "ana", "password": "wrong"})
    assert response.status_code == 200  # the form again, with an error
    response = admin.post("/admin/login/", {"username": "ana", "password": "wrong"})
    assert response.status_code == 429 and int(response["Retry-After"]) >= 1
    assert admin.get("/admin/login/").status_code == 200


def test_forwarded_for_is_believed_from_the_trusted_proxy_only(rf):
    forwarded = {"HTTP_X_FORWARDED_FOR": "203.0.113.5, 198.51.100.7"}
    assert client_address(rf.get("/", REMOTE_ADDR=PROXY, **forwarded)) == "198.51.100.7"
    assert client_address(rf.get("/", REMOTE_ADDR="10.0.0.1", **forwarded)) == "10.0.0.1"
    assert client_address(rf.get("/", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="not-an-ip")) == PROXY
    assert client_address(rf.get("/", REMOTE_ADDR=PROXY)) == PROXY


def test_clients_behind_the_proxy_are_counted_apart(client):
    for n in range(4):
        login(client, f"x{n}", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert_throttled(login(client, "y", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.1"))
    assert login(client, "z", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 400
    # an untrusted client cannot pick a fresh address
    for n in range(4):
        login(client, f"w{n}", REMOTE_ADDR="10.0.3.1", HTTP_X_FORWARDED_FOR=f"198.51.100.{10 + n}")
    assert_throttled(login(client, "v", REMOTE_ADDR="10.0.3.1", HTTP_X_FORWARDED_FOR="198.51.100.99"))


@pytest.mark.parametrize("rate, parsed", [("5/min", (5, 60)), ("20/hour", (20, 3600)), ("1/s", (1, 1)),
                                          ("100/day", (100, 86400))])
def test_rates(rate, parsed):
    assert parse_rate(rate) == parsed


@pytest.mark.parametrize("rate", ["5", "5/minute", "five/min", "-1/min", "/min"])
def test_bad_rates_fail_the_system_check(settings, rate):
    from personas.ratelimit import check_rates

    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "login_client": rate}
    assert [error.id for error in check_rates()] == ["ratelimit.E001"]
