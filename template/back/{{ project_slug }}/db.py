"""A request's first read doubles as its connection's health check.

CONN_HEALTH_CHECKS has Django ping (`SELECT 1`) a reused connection before
the first query of each request, so that one the server dropped (a restart)
is replaced instead of failing the request. When that first query is a read
that can simply be asked again, the read itself is the check: one round trip
instead of two, on the requests that come most often (the readiness check,
every token lookup).
"""

from collections.abc import Callable
from typing import Any

from django.db import InterfaceError, OperationalError, connection


def checking_read[T](read: Callable[[], T]) -> T:
    """`read()`, standing in for the connection's health check when it is the
    request's first query. If it fails on a reused connection that then fails
    the check too (the server dropped it), that connection is closed and
    `read()` asked once more, on a new one. `read` must be safe to repeat."""
    # Django's health-check state (CONN_HEALTH_CHECKS), which django-stubs does not declare.
    db: Any = connection
    if db.health_check_done or not db.health_check_enabled:
        return read()  # checked already in this request, or a connection yet to open
    # Inside a transaction (a test's) a lost connection cannot be replaced.
    reused = db.connection is not None and not db.in_atomic_block
    db.health_check_done = True
    try:
        return read()
    except (OperationalError, InterfaceError):
        if not reused or db.is_usable():
            raise  # not a connection the server dropped: a timeout, a new connection refused...
        db.close()
        return read()
