"""Brute-force limits of login (API and admin) and signup, per client and per account."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from personas.models import Attempt
from personas.ratelimit import PublicRateLimitedView, client_address, parse_rate

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


# ---------------------------------------------------------------------------
# Trusted proxies by network; IPv6 clients by /64
# ---------------------------------------------------------------------------
INGRESS_PODS = ["10.42.0.0/16", "fd00:10:42::/56"]  # e.g. Kubernetes' ingress controller (DJANGO_INGRESS_PROXIES)


@pytest.fixture
def ingress(settings):
    settings.TRUSTED_PROXIES = [PROXY, *INGRESS_PODS]


@pytest.mark.usefixtures("ingress")
@pytest.mark.parametrize("remote, trusted", [
    ("10.42.0.7", True), ("10.42.255.254", True), ("::ffff:10.42.3.4", True),  # a dual-stack socket's IPv4 client
    ("fd00:10:42::9", True), ("fd00:10:42:ff:1:2:3:4", True),
    ("10.43.0.7", False), ("10.41.255.255", False), ("192.0.2.1", False), ("fd00:10:43::9", False),
])
def test_forwarded_for_is_believed_from_a_trusted_network_only(rf, remote, trusted):
    """A new pod of the proxy is trusted at once, whatever address it got in the network."""
    request = rf.post("/api/auth/login/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR="203.0.113.5, 198.51.100.7")
    assert (client_address(request) == "198.51.100.7") is trusted


@pytest.mark.usefixtures("ingress")
def test_direct_requests_through_the_ingress_count_per_visitor(client, user, password):
    """The ingress controller sends /api/ and /admin/ straight to Django: its
    visitors are counted apart, whichever of its pods forwards them, and do
    not lock each other out of the admin's login."""
    admin = Client()
    for n in range(6):
        response = admin.post("/admin/login/", {"username": f"guess{n}", "password": "x"},
                              REMOTE_ADDR="10.42.0.5", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")
        assert response.status_code == 200, n  # the form again, with an error
    for n in range(4):
        login(client, f"x{n}", REMOTE_ADDR=f"10.42.{n}.9", HTTP_X_FORWARDED_FOR="198.51.100.20")
    assert_throttled(login(client, "y", REMOTE_ADDR="10.42.7.1", HTTP_X_FORWARDED_FOR="198.51.100.20"))
    assert login(client, "ana", password, REMOTE_ADDR="10.42.0.5",
                 HTTP_X_FORWARDED_FOR="198.51.100.21").status_code == 200


@pytest.mark.parametrize("entry", ["giga-frontend", "giga_frontend", "frontend.default.svc.cluster.local.",
                                   "10.0.0.7", "10.42.0.0/16", "2001:db8::1", "fd00:10:42::/56",
                                   "::ffff:10.42.0.0/112"])
def test_good_trusted_proxies_pass_the_system_check(settings, entry):
    from personas.ratelimit import check_trusted_proxies

    settings.TRUSTED_PROXIES = [PROXY, entry]
    assert check_trusted_proxies() == []


@pytest.mark.parametrize("entry", [
    "10.42.0.1/16",  # host bits set: 10.42.0.0/16?
    "10.42.0.0/33", "10.42.0", "fd00::/129", "fd00:::1",
    "0.0.0.0/0", "::/0", "::ffff:0:0/96",  # every (IPv4) address: any client could choose its own
    "frontend:3000", "http://frontend", "front end", "-frontend", "frontënd", "a" * 64, "",
])
def test_bad_trusted_proxies_fail_the_system_check(settings, entry):
    from django.core.checks import run_checks

    settings.TRUSTED_PROXIES = [PROXY, entry, "giga-frontend"]
    errors = [error for error in run_checks() if (error.id or "").startswith("ratelimit.")]
    assert [error.id for error in errors] == ["ratelimit.E002"]
    assert repr(entry) in errors[0].msg


def test_trusted_proxies_must_be_a_list(settings):
    from personas.ratelimit import check_trusted_proxies

    settings.TRUSTED_PROXIES = "giga-frontend,10.42.0.0/16"
    assert [error.id for error in check_trusted_proxies()] == ["ratelimit.E002"]


def test_an_invalid_proxy_entry_trusts_nothing(rf, settings):
    settings.TRUSTED_PROXIES = ["10.42.0.1/16", "0.0.0.0/0"]
    request = rf.post("/", REMOTE_ADDR="10.42.0.1", HTTP_X_FORWARDED_FOR="198.51.100.7")
    assert client_address(request) == "10.42.0.1"


@pytest.mark.parametrize("remote, forwarded, key", [
    ("2001:db8:1:2:3:4:5:6", None, "2001:db8:1:2::/64"),
    ("2001:db8:1:2::", None, "2001:db8:1:2::/64"),
    ("fe80::1%eth0", None, "fe80::/64"),
    ("::ffff:192.0.2.1", None, "192.0.2.1"),
    ("192.0.2.1", None, "192.0.2.1"),
    (PROXY, "2001:db8:9:8:7:6:5:4", "2001:db8:9:8::/64"),
    (PROXY, "::ffff:198.51.100.7", "198.51.100.7"),
    (f"::ffff:{PROXY}", "198.51.100.7", "198.51.100.7"),
])
def test_the_client_is_an_ipv4_address_or_an_ipv6_64(rf, remote, forwarded, key):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    assert client_address(rf.post("/", REMOTE_ADDR=remote, **extra)) == key


def test_addresses_of_one_ipv6_64_share_the_client_limit(client):
    for n in range(4):
        login(client, f"g{n}", REMOTE_ADDR=f"2001:db8:1:2::{n + 1:x}")
    assert_throttled(login(client, "h", REMOTE_ADDR="2001:db8:1:2:ffff:ffff:ffff:ffff"))
    # behind the proxy too
    assert_throttled(login(client, "i", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="2001:db8:1:2:abcd::99"))
    # another /64, even the next one, is another client
    assert login(client, "j", REMOTE_ADDR="2001:db8:1:3::1").status_code == 400
    assert login(client, "k", REMOTE_ADDR="2001:db8:1:1:ffff:ffff:ffff:ffff").status_code == 400


def test_an_ipv4_mapped_address_is_its_ipv4_client(client):
    for n in range(2):
        login(client, f"g{n}", REMOTE_ADDR="198.51.100.9")
        login(client, f"m{n}", REMOTE_ADDR="::ffff:198.51.100.9")
    assert_throttled(login(client, "h", REMOTE_ADDR=PROXY, HTTP_X_FORWARDED_FOR="::ffff:198.51.100.9"))
    assert_throttled(login(client, "i", REMOTE_ADDR="198.51.100.9"))


def test_a_rate_limited_view_must_name_its_scope(rf):
    class Unscoped(PublicRateLimitedView):
        """Forgot rate_limit_scope: no request is let through uncounted."""

    with pytest.raises(ImproperlyConfigured, match="Unscoped has AttemptThrottle but no rate_limit_scope"):
        Unscoped.as_view()(rf.post("/", {}, content_type="application/json"))
    assert not Attempt.objects.exists()
