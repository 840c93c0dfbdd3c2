"""Request ids, one log line per request, Prometheus metrics, and error
tracking: what it takes to follow one request through the logs and to see
the backend's rates, latencies and database use.

The request id comes from X-Request-ID when a trusted proxy sent it (Caddy,
SvelteKit's server, the ingress: DJANGO_TRUSTED_PROXIES, as for
X-Forwarded-For); anyone else's is replaced by a new one. It is bound to every
log line written while the request runs, sent back in the response, and
attached to the error tracker's events.
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from django.core.signals import request_finished
from django.db.backends.signals import connection_created
from django.http import HttpRequest, HttpResponse

# Each granian worker writes its metrics under PROMETHEUS_MULTIPROC_DIR (set
# by the image, emptied by the entrypoint at each start); a process started
# some other way finds it too. prometheus_client reads it when imported.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from prometheus_client import (  # after the directory exists
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

if TYPE_CHECKING:
    from sentry_sdk.types import Event, Hint

logger = structlog.get_logger("request")

REQUEST_ID_HEADER = "X-Request-ID"
# Caddy's UUIDs, SvelteKit's, and the usual ingress formats; anything else
# (too long, control characters, a log-injection attempt) is replaced.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")

REQUESTS = Counter("django_http_requests_total", "Requests answered, by route and status.",
                   ["method", "route", "status"])
LATENCY = Histogram("django_http_request_duration_seconds", "Time to answer a request, by route.",
                    ["method", "route"])
CONNECTIONS = Counter("django_db_connections_total", "Connections opened to the database.")
QUERIES = Histogram("django_db_query_duration_seconds", "Time the database took per query.")


def request_id_of(request: HttpRequest) -> str:
    """The id a trusted proxy gave this request, if well-formed; else a new one."""
    from personas.ratelimit import _address, is_trusted_proxy  # models: not importable from settings

    given = request.headers.get(REQUEST_ID_HEADER, "")
    if given and REQUEST_ID.fullmatch(given):
        try:
            trusted = is_trusted_proxy(_address(request.META.get("REMOTE_ADDR", "")))
        except ValueError:
            trusted = False
        if trusted:
            return given
    return str(uuid.uuid4())


def route_of(request: HttpRequest) -> str:
    """The URL pattern that answered (a bounded label set), never the path itself."""
    match = getattr(request, "resolver_match", None)
    return match.route if match is not None and match.route else "unmatched"


class RequestLogMiddleware:
    """First in MIDDLEWARE: the request id, then one line per request (method,
    path without its query string, status, duration, user id) and the
    request metrics."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        request_id = request_id_of(request)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        tag_error_events(request_id)
        response = self.get_response(request)
        duration = time.perf_counter() - started
        response[REQUEST_ID_HEADER] = request_id
        route = route_of(request)
        REQUESTS.labels(request.method, route, response.status_code).inc()
        LATENCY.labels(request.method, route).observe(duration)
        user = getattr(request, "user", None)
        status = response.status_code
        level = logging.ERROR if status >= 500 else logging.WARNING if status >= 400 else logging.INFO
        # The query string is left out: it may carry a token.
        logger.log(level, "request", method=request.method, path=request.path, status=status,
                   duration_ms=round(duration * 1000, 1),
                   user_id=user.pk if user is not None and user.is_authenticated else None)
        return response


def metrics(request: HttpRequest) -> HttpResponse:
    """GET /metrics, for Prometheus on the app network: every worker process's
    metrics, summed (prometheus_client's multiprocess mode, when
    PROMETHEUS_MULTIPROC_DIR is set as in the image), else this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        # prometheus_client's multiprocess module has no type hints.
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def count_connection(sender: Any, connection: Any, **kwargs: Any) -> None:
    CONNECTIONS.inc()
    connection.execute_wrappers.append(time_query)


def time_query(execute: Callable[..., Any], sql: str, params: Any, many: bool, context: Any) -> Any:
    with QUERIES.time():
        return execute(sql, params, many, context)


def forget_request(**kwargs: Any) -> None:
    structlog.contextvars.clear_contextvars()


def connect() -> None:
    """The database metrics, and no request's id on the lines after it (AppConfig.ready)."""
    connection_created.connect(count_connection, dispatch_uid="observability.count_connection")
    request_finished.connect(forget_request, dispatch_uid="observability.forget_request")


def tag_error_events(request_id: str) -> None:
    """The error tracker's events of this request carry its id (when Sentry is on)."""
    if SENTRY_ON:
        import sentry_sdk

        sentry_sdk.get_isolation_scope().set_tag("request_id", request_id)


SENTRY_ON = False


def start_error_tracking(dsn: str, environment: str) -> None:
    """Sentry's SDK, only when SENTRY_DSN is set: unset, it is never imported.
    No personal data: no user name, e-mail or address, no cookies, no request
    body, and Authorization and cookie headers are dropped before sending."""
    global SENTRY_ON
    if not dsn:
        return
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.logging import ignore_logger

    # No local variables in the stack frames: a query's parameters (a token's
    # key, an address) would be in them.
    sentry_sdk.init(dsn=dsn, environment=environment or None, send_default_pii=False,
                    include_local_variables=False, integrations=[DjangoIntegration()],
                    max_request_body_size="never", before_send=scrub, traces_sample_rate=0)
    # A 5xx's request line is logged at ERROR: the exception is the event.
    ignore_logger("request")
    SENTRY_ON = True


SAFE_HEADERS = {"accept", "content-type", "content-length", "host", "user-agent", "x-request-id"}


def scrub(event: Event, hint: Hint) -> Event:
    """What leaves for the error tracker: the request's method, path and safe
    headers, never its query string, cookies or body; the user's id only."""
    request: dict[str, Any] | None = event.get("request")
    if request is not None:
        for key in ("cookies", "data", "query_string", "env"):
            request.pop(key, None)
        url = request.get("url")
        if isinstance(url, str):
            request["url"] = url.split("?", 1)[0]
        headers: dict[str, str] = request.get("headers") or {}
        request["headers"] = {name: value for name, value in headers.items() if name.lower() in SAFE_HEADERS}
    user: dict[str, Any] | None = event.get("user")
    if user is not None:
        event["user"] = {"id": user["id"]} if "id" in user else {}
    return event
