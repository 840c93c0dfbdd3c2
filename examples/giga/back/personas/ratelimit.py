"""Brute-force limits: login (API and admin), signup, and the account flows
that check a password or send a mail, per client and per account.

Each attempt is counted against two keys, the client's address and the
account (the username tried), in a sliding window (settings.RATE_LIMITS). The
counts live in PostgreSQL (models.Attempt), so every granian worker process
sees the same ones; a transaction-scoped advisory lock per key makes "count,
then record" atomic, so parallel requests cannot slip past the limit. A
refused attempt is not recorded: waiting out the window always works.

The client's address: every API call arrives from SvelteKit's server, which
sends the browser's address as the last X-Forwarded-For entry (in Kubernetes
the ingress controller too, for /api/ and /admin/). That entry is used only
when the connection comes from a trusted proxy (settings.TRUSTED_PROXIES:
networks, addresses, and host names resolved with DNS); anyone else's header
is ignored, so a client cannot pick its own address. An IPv6 client counts as
its /64, which whoever holds one of its addresses normally holds whole.
"""

import functools
import hashlib
import ipaddress
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from rest_framework.exceptions import Throttled
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from . import tokens
from .models import Attempt, Usuario

logger = logging.getLogger(__name__)

PERIODS = {"s": 1, "min": 60, "hour": 3600, "day": 86400}

# Proxy names are resolved again after this many seconds: a container that
# restarts may come back with another address.
RESOLVE_TTL = 60

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class _Resolved:
    """trusted_proxies()' last answer: for these entries, at this time."""

    entries: tuple[object, ...] | None = None
    networks: frozenset[Network] = frozenset()
    at: float = 0.0


_resolved = _Resolved()
_resolved_lock = threading.Lock()


def parse_rate(rate: str) -> tuple[int, int]:
    """"5/min" -> (5, 60)."""
    number, _, period = rate.partition("/")
    if not number.strip().isdigit() or period.strip() not in PERIODS:
        raise ValueError(f"{rate!r} is not <attempts>/<period> with a period in {', '.join(PERIODS)}")
    return int(number), PERIODS[period.strip()]


def check_rates(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for name, rate in settings.RATE_LIMITS.items():
        try:
            parse_rate(rate)
        except ValueError as exc:
            errors.append(checks.Error(f"RATE_LIMITS[{name!r}]: {exc}", id="ratelimit.E001"))
    return errors


# ---------------------------------------------------------------------------
# The client's address
# ---------------------------------------------------------------------------
# An IPv6 client is counted by its network of this prefix: a home, a server or
# a VM gets a /64 (or more) and can use any of its 2**64 addresses.
IPV6_CLIENT_PREFIX = 64
# What a host name's labels are made of (DNS's letters, digits and hyphens;
# Docker's aliases also allow underscores).
_LABEL_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_")
PROXIES_HINT = (
    "DJANGO_TRUSTED_PROXIES and DJANGO_INGRESS_PROXIES list, comma-separated, host names "
    "(my-frontend), addresses (10.0.0.7) and networks in CIDR notation (10.42.0.0/16, fd00:10:42::/56)."
)


def parse_proxy(entry: object) -> tuple[str, Network | str]:
    """One TRUSTED_PROXIES entry -> ("network", IPv4Network | IPv6Network)
    for an address or a network (CIDR), or ("name", entry) for a host name.
    ValueError, saying why, for anything else: a network with host bits set
    (10.0.0.1/8), one that holds every address (0.0.0.0/0: any client could
    choose its own), or a name DNS cannot hold."""
    if not isinstance(entry, str):
        raise ValueError(f"{entry!r} is not a string")
    text = entry.strip()
    if "/" in text or ":" in text or (text and set(text) <= set("0123456789.")):
        try:
            network = ipaddress.ip_network(text)
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an address or a network: {exc}") from None
        if network.version == 6 and network.network_address.ipv4_mapped is not None and network.prefixlen >= 96:
            # what a dual-stack socket reports for an IPv4 client is counted
            # as that IPv4 address (_address()): trust it as such
            network = ipaddress.IPv4Network((network.network_address.ipv4_mapped, network.prefixlen - 96))
        if network.prefixlen == 0:
            raise ValueError(f"{entry!r} holds every address: any client could choose its own")
        return "network", network
    labels = text.removesuffix(".").split(".")
    if not (0 < len(text) <= 253 and all(
            0 < len(label) <= 63 and set(label.lower()) <= _LABEL_CHARACTERS
            and not label.startswith("-") and not label.endswith("-") for label in labels)):
        raise ValueError(f"{entry!r} is neither a host name, an address nor a network (CIDR)")
    return "name", text


def check_trusted_proxies(app_configs: Sequence[AppConfig] | None = None,
                          **kwargs: Any) -> list[checks.CheckMessage]:
    """ratelimit.E002: an entry of TRUSTED_PROXIES that parse_proxy() refuses
    (at run time it would trust nothing, and be logged)."""
    # A list of strings in the settings module as shipped; an edit may make it anything.
    proxies: Iterable[object] = settings.TRUSTED_PROXIES
    if isinstance(proxies, str):
        return [checks.Error(f"TRUSTED_PROXIES is the string {proxies!r}, not a list", hint=PROXIES_HINT,
                             id="ratelimit.E002")]
    errors: list[checks.CheckMessage] = []
    for entry in proxies:
        try:
            parse_proxy(entry)
        except ValueError as exc:
            errors.append(checks.Error(f"TRUSTED_PROXIES: {exc}.", hint=PROXIES_HINT, id="ratelimit.E002"))
    return errors


def trusted_proxies() -> frozenset[Network]:
    """The networks of settings.TRUSTED_PROXIES: each address or network as
    written, each host name as the addresses it resolves to (resolved again
    after RESOLVE_TTL seconds, so that a proxy that comes back elsewhere is
    followed). A name that does not resolve (e.g. the frontend is not running)
    or an invalid entry (system check ratelimit.E002) trusts nothing and is
    logged."""
    entries = tuple(settings.TRUSTED_PROXIES)
    with _resolved_lock:
        if _resolved.entries == entries and time.monotonic() - _resolved.at < RESOLVE_TTL:
            return _resolved.networks
        networks: set[Network] = set()
        for entry in entries:
            try:
                _, value = parse_proxy(entry)
            except ValueError as exc:
                logger.error("TRUSTED_PROXIES: %s; that entry trusts nothing", exc)
                continue
            if not isinstance(value, str):  # an address or a network
                networks.add(value)
                continue
            try:
                infos = socket.getaddrinfo(value, None, proto=socket.IPPROTO_TCP)
            except OSError as exc:
                logger.warning("Trusted proxy %r does not resolve (%s); its X-Forwarded-For is ignored", value, exc)
                continue
            networks.update(ipaddress.ip_network(_address(str(info[4][0]))) for info in infos)
        _resolved.entries, _resolved.networks, _resolved.at = entries, frozenset(networks), time.monotonic()
        return _resolved.networks


def is_trusted_proxy(address: Address) -> bool:
    """Whether an address (_address()) is in one of trusted_proxies()."""
    return any(address in network for network in trusted_proxies())


def _address(text: str) -> Address:
    """An address as the limits see it: an IPv4-mapped IPv6 address
    (::ffff:192.0.2.1, what a dual-stack socket reports for an IPv4 client)
    is its IPv4 address; an IPv6 zone (%eth0) is dropped. ValueError if
    `text` is no address."""
    address = ipaddress.ip_address(text.strip())
    if address.version == 6:
        if address.ipv4_mapped:
            return address.ipv4_mapped
        if address.scope_id:
            return ipaddress.IPv6Address(str(address).partition("%")[0])
    return address


def client_key(address: Address) -> str:
    """The client an address belongs to, as the per-client limits count it:
    an IPv4 address itself, an IPv6 address its /64 (IPV6_CLIENT_PREFIX):
    2001:db8:1:2::/64. An attacker holding a /64 gets one client's attempts,
    not 2**64 of them."""
    if address.version == 6:
        return str(ipaddress.ip_network((address, IPV6_CLIENT_PREFIX), strict=False))
    return str(address)


def client_address(request: HttpRequest | Request) -> str:
    """The client of `request` (client_key()): the last X-Forwarded-For entry
    when the connection comes from a trusted proxy, else REMOTE_ADDR."""
    remote: str = request.META.get("REMOTE_ADDR", "")
    try:
        address = _address(remote)
    except ValueError:
        return remote  # not an IP connection (a Unix socket): counted as it is
    forwarded: str = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and is_trusted_proxy(address):
        try:
            address = _address(forwarded.rsplit(",", 1)[-1])
        except ValueError:
            logger.warning("Malformed X-Forwarded-For from proxy %s: %r", remote, forwarded[:100])
    return client_key(address)


# ---------------------------------------------------------------------------
# Counting attempts
# ---------------------------------------------------------------------------
def _key(*parts: str) -> str:
    # Hashed: fixed length whatever was sent, and no addresses or usernames
    # stored in clear.
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


def account_key(field: str, value: object) -> str | None:
    """What a per-account limit counts for the body's `field`: the account
    that authentication would pick, however its name is spelled. Names and
    addresses are folded as models.UsuarioQuerySet matches them (Unicode
    compatibility forms, surrounding spaces, then PostgreSQL's lower()), so
    ` Boss`, `ｂｏｓｓ` and `boss` are one account, and one recipient. None
    for a value that is not text: the request gets a 400 anyway."""
    if not isinstance(value, str) or not value or "\0" in value:
        return None
    if field == "uid":
        user = tokens.user_from_uid(value)
        return f"username:{_folded(user.get_username())}" if user else f"uid:{value}"
    if field == "email":
        return f"email:{_folded(value.strip())}"
    return f"username:{_folded(Usuario.normalize_username(value))}"


def _folded(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: the serializer refuses it
        return text.encode("utf-8", "surrogatepass").hex()
    with connection.cursor() as cursor:
        cursor.execute("SELECT lower(%s)", [text])
        [(folded,)] = cursor.fetchall()
    return str(folded)


def attempt(scope: str, request: HttpRequest | Request, accounts: Iterable[str | None] = (),
            per_client: bool = True) -> int | None:
    """Record an attempt of `scope` ("login", "signup", "mail") by this request's
    client (unless not `per_client`) on each of `accounts` (account_key()s).
    None if allowed; else the seconds to wait."""
    limits = [(_key(scope, "account", account), settings.RATE_LIMITS[f"{scope}_account"])
              for account in accounts if account]
    if per_client:
        limits.append((_key(scope, "client", client_address(request)), settings.RATE_LIMITS[f"{scope}_client"]))
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


def limit_mail_to(request: HttpRequest | Request, email: str) -> None:
    """Count a mail to `email` against its recipient limit (the client's
    limit is the view's own): signup and a change of address mail an
    address that the body names. Raises Throttled (429) past it."""
    seconds = attempt("mail", request, [account_key("email", email)], per_client=False)
    if seconds is not None:
        raise Throttled(seconds)


@runtime_checkable
class _Scoped(Protocol):
    rate_limit_scope: str


class AttemptThrottle(BaseThrottle):
    """DRF throttle of a view with `rate_limit_scope` (RateLimitedView); the
    account is the logged-in user, else the one the body's `rate_limit_field`
    names ("username" unless the view says otherwise, e.g. "email"; None for
    no account). Refused requests get 429 with Retry-After."""

    seconds: int | None = None

    def allow_request(self, request: Request, view: APIView) -> bool:
        if not isinstance(view, _Scoped):
            raise ImproperlyConfigured(f"{type(view).__name__} has AttemptThrottle but no rate_limit_scope")
        data = request.data
        field = getattr(view, "rate_limit_field", "username")
        if request.user.is_authenticated:
            account = account_key("username", request.user.get_username())
        elif field and isinstance(data, Mapping):
            account = account_key(field, data.get(field))
        else:
            account = None
        self.seconds = attempt(view.rate_limit_scope, request, [account])
        return self.seconds is None

    def wait(self) -> float | None:
        return self.seconds


class RateLimitedView(APIView):
    """A view each request of which is an attempt of `rate_limit_scope`
    ("login", "signup", "mail": settings.RATE_LIMITS), counted by
    AttemptThrottle. A subclass sets the scope, and `rate_limit_field` if the
    body names the account in another field than "username" (None: in none)."""

    throttle_classes = [AttemptThrottle]
    rate_limit_scope: str
    rate_limit_field: str | None = "username"


class PublicRateLimitedView(RateLimitedView):
    """A RateLimitedView open to anyone, that reads no token: a stale one is
    no 401, and the account counted is the one the body names."""

    authentication_classes = []
    permission_classes = [AllowAny]


def limit_admin_login(login_view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The admin's login view, counted with the API's login (the same limits
    and counts: an account gets its attempts once, whichever door is used)."""

    @functools.wraps(login_view)
    def view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if request.method == "POST":
            seconds = attempt("login", request, [account_key("username", request.POST.get("username"))])
            if seconds is not None:
                return HttpResponse(
                    f"Too many login attempts. Try again in {seconds} seconds.\n",
                    status=429,
                    content_type="text/plain; charset=utf-8",
                    headers={"Retry-After": str(seconds)},
                )
        return login_view(request, *args, **kwargs)

    return view
