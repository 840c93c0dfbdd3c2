"""Where one request's CPU goes, for tests/benchmarks/bench_serving.py: the
rendered backend's WSGI application called in-process (no server, no client,
no other process on the CPU), each of its two benchmark endpoints timed in
process CPU time, with some of the per-request work the backend ships (and
tests) switched off. Run inside the backend's venv and environment, from
back/, one variant per process:

    BENCH_TOKEN=<knox token> python -m harness.request_cost VARIANT [REQUESTS]

prints one JSON object: {"variant": ..., "health": ms, "me": ms}, the
fastest of 3 runs of REQUESTS calls each.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import sys
import time
from typing import Any

# What each variant switches off; "as shipped" switches off nothing.
VARIANTS = {
    "as shipped": (),
    "no request log line": ("log",),
    "no request metrics": ("metrics",),
    "no request id, log line or metrics (RequestLogMiddleware)": ("request_log",),
    "no Django middleware (security, CSP, session, CSRF, auth, messages, clickjacking)": ("django_middleware",),
    "no middleware at all": ("request_log", "django_middleware"),
}
ENDPOINTS = {"health": "/api/health/", "me": "/api/auth/me/"}


class _Off:
    """A logger and a metric that do nothing."""

    def log(self, *args: Any, **kwargs: Any) -> None:
        pass

    def labels(self, *args: Any) -> _Off:
        return self

    def inc(self, *args: Any) -> None:
        pass

    def observe(self, *args: Any) -> None:
        pass

    def time(self) -> contextlib.nullcontext:
        return contextlib.nullcontext()


def application(switches: tuple[str, ...]):
    import django
    from django.conf import settings

    django.setup()
    observability = importlib.import_module(settings.ROOT_URLCONF.rpartition(".")[0] + ".observability")
    ours = [m for m in settings.MIDDLEWARE if m.endswith(".RequestLogMiddleware")]
    middleware = list(settings.MIDDLEWARE)
    if "request_log" in switches:
        middleware = [m for m in middleware if m not in ours]
    if "django_middleware" in switches:
        middleware = [m for m in middleware if m in ours]
    settings.MIDDLEWARE = middleware
    if "log" in switches:
        observability.logger = _Off()
    if "metrics" in switches:
        observability.REQUESTS = observability.LATENCY = observability.QUERIES = _Off()
    from django.core.handlers.wsgi import (
        WSGIHandler,  # after setup, with MIDDLEWARE as set above
    )

    return WSGIHandler()


def call(app, path: str, headers: dict[str, str]) -> str:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "", "SERVER_NAME": "127.0.0.1",
               "SERVER_PORT": "8000", "HTTP_HOST": "127.0.0.1:8000", "REMOTE_ADDR": "127.0.0.1",
               "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.input": io.BytesIO(), "wsgi.url_scheme": "http",
               "wsgi.errors": sys.stderr, **headers}
    answer: list[str] = []
    b"".join(app(environ, lambda status, response_headers: answer.append(status)))
    return answer[0]


def main() -> None:
    variant = sys.argv[1]
    requests = int(sys.argv[2]) if len(sys.argv) > 2 else 3000
    app = application(VARIANTS[variant])
    auth = {"HTTP_AUTHORIZATION": f"Token {os.environ['BENCH_TOKEN']}"}
    result: dict[str, Any] = {"variant": variant}
    for endpoint, path in ENDPOINTS.items():
        headers = auth if endpoint == "me" else {}
        status = call(app, path, headers)
        assert status.startswith("200"), (variant, path, status)
        for _ in range(300):  # warm
            call(app, path, headers)
        runs = []
        for _ in range(3):
            started = time.process_time()
            for _ in range(requests):
                call(app, path, headers)
            runs.append((time.process_time() - started) / requests * 1000)
        result[endpoint] = min(runs)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
