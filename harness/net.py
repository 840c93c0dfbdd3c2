"""Loopback networking for the servers the harness starts: a free port, and a
server process that is up once it answers and gone when the block ends."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path


def _ephemeral_ports() -> range:
    low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    return range(int(low), int(high) + 1)


_EPHEMERAL = _ephemeral_ports()
_handed_out: set[int] = set()
# pytest-xdist's workers (gw0, gw1, ...) each pick from their own share of the ports.
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


def free_port() -> int:
    """A port nobody listens on, for a server started just after.

    Picked below the kernel's ephemeral range: a port from bind(0) can be taken
    by any outgoing connection (psql, a test's HTTP client) between the pick
    and the server's own bind, which failed a server's start with "Address
    already in use". Never the same port twice in one run, nor in two workers."""
    candidates = [port for port in range(20000 + _WORKER, _EPHEMERAL.start, _WORKERS) if port not in _handed_out]
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket() as s:
            try:
                s.bind(("0.0.0.0", port))  # servers listen on loopback or on all addresses
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free loopback port below the ephemeral range")


def listening(port: int, host: str = "127.0.0.1") -> Callable[[], bool]:
    """Ready when something accepts TCP connections on `host`:`port`."""
    def ready() -> bool:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            return False
    return ready


def answering(url: str, headers: dict[str, str] | None = None) -> Callable[[], bool]:
    """Ready when GET `url` (with `headers`) answers 200."""
    def ready() -> bool:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=2) as response:
                return response.status == 200
        except OSError:
            return False
    return ready


@contextlib.contextmanager
def serving(command: list[str], *, cwd: Path, env: dict[str, str], ready: Callable[[], bool],
            timeout: float, name: str, log: Path | None = None):
    """`command` running in a session of its own (so its children stop with
    it), output in `process.log_path` (`log`, or a new file); yields the
    Popen once `ready()`."""
    log = log or Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log")[1])
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    process.log_path = log
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited {process.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready after {timeout}s:\n{log.read_text()}")
            time.sleep(0.2)
        yield process
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def exchange(connection, method: str, path: str, headers: list[tuple[str, bytes | str]],
             body: bytes | None = None, skip_host: bool = False) -> tuple[int, dict[str, str], bytes]:
    """One request on `connection` (http.client), written as given: header
    values byte for byte, nothing added but Content-Length (and Host unless
    `skip_host`, when `headers` carries it). (status, lower-cased headers, body)."""
    try:
        connection.putrequest(method, path, skip_host=skip_host, skip_accept_encoding=True)
        for name, value in headers:
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()
