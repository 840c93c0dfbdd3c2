"""Brute-force limits: login (API and admin), signup, and the account flows
that check a password or send a mail, per client and per account.

Each attempt is counted against two keys, the client's address and the
account (the username tried), in a sliding window (settings.RATE_LIMITS). The
counts live in PostgreSQL (models.Attempt), so every granian worker process
sees the same ones; a transaction-scoped advisory lock per key makes "count,
then record" atomic, so parallel requests cannot slip past the limit. A
refused attempt is not recorded: waiting out the window always works.

The client's address: every API call arrives from SvelteKit's server, which
sends the browser's address as the last X-Forwarded-For entry. That entry is
used only when the connection comes from a trusted proxy
(settings.TRUSTED_PROXIES, names resolved with DNS); anyone else's header is
ignored, so a client cannot pick its own address.
"""

import functools
import hashlib
import ipaddress
import logging
import math
import socket
import threading
import time
from collections.abc import Mapping
from datetime import timedelta

from django.conf import settings
from django.core import checks
from django.db import connection, transaction
from django.http import HttpResponse
from django.utils import timezone
from rest_framework.throttling import BaseThrottle

from .models import Attempt

logger = logging.getLogger(__name__)

PERIODS = {"s": 1, "min": 60, "hour": 3600, "day": 86400}

# Proxy names are resolved again after this many seconds: a container that
# restarts may come back with another address.
RESOLVE_TTL = 60
_resolved = {"names": None, "addresses": frozenset(), "at": 0.0}
_resolved_lock = threading.Lock()


def parse_rate(rate):
    """"5/min" -> (5, 60)."""
    number, _, period = rate.partition("/")
    if not number.strip().isdigit() or period.strip() not in PERIODS:
        raise ValueError(f"{rate!r} is not <attempts>/<period> with a period in {', '.join(PERIODS)}")
    return int(number), PERIODS[period.strip()]


def check_rates(app_configs=None, **kwargs):
    errors = []
    for name, rate in settings.RATE_LIMITS.items():
        try:
            parse_rate(rate)
        except ValueError as exc:
            errors.append(checks.Error(f"RATE_LIMITS[{name!r}]: {exc}", id="ratelimit.E001"))
    return errors


# ---------------------------------------------------------------------------
# The client's address
# ---------------------------------------------------------------------------
def trusted_proxies():
    """The addresses of settings.TRUSTED_PROXIES; a name that does not resolve
    (e.g. the frontend is not running) trusts nothing and is logged."""
    names = tuple(settings.TRUSTED_PROXIES)
    with _resolved_lock:
        if _resolved["names"] == names and time.monotonic() - _resolved["at"] < RESOLVE_TTL:
            return _resolved["addresses"]
        addresses = set()
        for name in names:
            try:
                addresses.update(info[4][0] for info in socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP))
            except OSError as exc:
                logger.warning("Trusted proxy %r does not resolve (%s); its X-Forwarded-For is ignored", name, exc)
        _resolved.update(names=names, addresses=frozenset(addresses), at=time.monotonic())
        return _resolved["addresses"]


def client_address(request):
    remote = request.META.get("REMOTE_ADDR", "")
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and remote in trusted_proxies():
        try:
            return str(ipaddress.ip_address(forwarded.rsplit(",", 1)[-1].strip()))
        except ValueError:
            logger.warning("Malformed X-Forwarded-For from proxy %s: %r", remote, forwarded[:100])
    return remote


# ---------------------------------------------------------------------------
# Counting attempts
# ---------------------------------------------------------------------------
def _key(*parts):
    # Hashed: fixed length whatever was sent, and no addresses or usernames
    # stored in clear.
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def attempt(scope, request, account=None):
    """Record an attempt of `scope` ("login", "signup", "mail") by this request's
    client on `account`. None if allowed; else the seconds to wait."""
    limits = [(_key(scope, "client", client_address(request)), settings.RATE_LIMITS[f"{scope}_client"])]
    if isinstance(account, str) and account:
        limits.append((_key(scope, "account", account.casefold()), settings.RATE_LIMITS[f"{scope}_account"]))
    now = timezone.now()
    longest = max(parse_rate(rate)[1] for rate in settings.RATE_LIMITS.values())
    with transaction.atomic():
        with connection.cursor() as cursor:
            for key, _ in sorted(limits):  # one order for every request: no deadlock
                cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])
        Attempt.objects.filter(at__lt=now - timedelta(seconds=longest)).delete()
        wait = 0.0
        for key, rate in limits:
            number, period = parse_rate(rate)
            window = Attempt.objects.filter(key=key, at__gt=now - timedelta(seconds=period))
            times = list(window.order_by("-at").values_list("at", flat=True)[:number])
            if len(times) >= number:
                # Allowed again when the oldest of the last `number` leaves the window.
                wait = max(wait, (times[-1] + timedelta(seconds=period) - now).total_seconds())
        if wait > 0:
            return max(1, math.ceil(wait))
        Attempt.objects.bulk_create([Attempt(key=key, at=now) for key, _ in limits])
    return None


class AttemptThrottle(BaseThrottle):
    """DRF throttle of a view with `rate_limit_scope`; the account is the
    logged-in user, else the body's `rate_limit_field` ("username" unless the
    view says otherwise, e.g. "email"). Refused requests get 429 with Retry-After."""

    def allow_request(self, request, view):
        data = request.data
        field = getattr(view, "rate_limit_field", "username")
        if request.user.is_authenticated:
            account = request.user.get_username()
        else:
            account = data.get(field) if isinstance(data, Mapping) else None
        self.seconds = attempt(view.rate_limit_scope, request, account)
        return self.seconds is None

    def wait(self):
        return self.seconds


def limit_admin_login(login_view):
    """The admin's login view, counted with the API's login (the same limits
    and counts: an account gets its attempts once, whichever door is used)."""

    @functools.wraps(login_view)
    def view(request, *args, **kwargs):
        if request.method == "POST":
            seconds = attempt("login", request, request.POST.get("username"))
            if seconds is not None:
                return HttpResponse(
                    f"Too many login attempts. Try again in {seconds} seconds.\n",
                    status=429,
                    content_type="text/plain; charset=utf-8",
                    headers={"Retry-After": str(seconds)},
                )
        return login_view(request, *args, **kwargs)

    return view
