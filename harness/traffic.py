"""Steady load on loopback from Python threads, for tests: every request's
start, latency and answer kept (wrk, for the benchmarks, is harness.load).

Each client is a thread with one keep-alive connection, sending its requests
in turn, back to back, until the load stops; a request that fails at the
socket (refused, reset, timed out) is recorded by the exception's name and the
client reconnects.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPException


@dataclass(frozen=True)
class Answer:
    path: str
    started: float  # time.monotonic()
    latency: float  # seconds
    status: int | str  # the HTTP status, or the exception's name


class Traffic:
    """`clients` threads sending `requests` ((method, path, headers) in turn)
    to `base`, each request given up after `timeout` seconds."""

    def __init__(self, base: str, requests: list[tuple[str, str, dict[str, str]]], *, clients: int,
                 timeout: float):
        self.host, port = base.removeprefix("http://").rsplit(":", 1)
        self.port = int(port)
        self.requests = requests
        self.timeout = timeout
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(clients)]

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.timeout + 5)

    def _client(self, n: int) -> None:
        connection = None
        turn = n  # clients start on different requests
        while not self._stop.is_set():
            method, path, headers = self.requests[turn % len(self.requests)]
            turn += 1
            connection = connection or HTTPConnection(self.host, self.port, timeout=self.timeout)
            started = time.monotonic()
            try:
                connection.request(method, path, headers=headers)
                response = connection.getresponse()
                response.read()
                status: int | str = response.status
                if response.will_close:
                    connection.close()
                    connection = None
            except (OSError, HTTPException) as error:  # refused, reset, timed out, garbled
                status = type(error).__name__
                connection.close()
                connection = None
            answer = Answer(path, started, time.monotonic() - started, status)
            with self._lock:
                self.answers.append(answer)
        if connection:
            connection.close()

    # -- what happened ----------------------------------------------------------
    def counts(self) -> dict[str, int | float]:
        """requests, 200s, 503s, others, and the longest latency (s)."""
        statuses = Counter(answer.status for answer in self.answers)
        return {
            "requests": len(self.answers),
            "200": statuses[200],
            "503": statuses[503],
            "others": len(self.answers) - statuses[200] - statuses[503],
            "longest": round(max((answer.latency for answer in self.answers), default=0.0), 3),
        }

    def others(self) -> Counter:
        """What was neither a 200 nor a 503, by (path, status)."""
        return Counter((a.path, a.status) for a in self.answers if a.status not in (200, 503))
