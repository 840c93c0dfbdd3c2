"""Run a rendered project's Caddyfile natively with Debian's `caddy`.

As in the Caddy container: the rendered Caddyfile as it is, its storage
(certificates, the local CA) in a data directory of its own (the image's
XDG_DATA_HOME=/data), and the compose service names it proxies to resolved
through a private /etc/hosts (harness.hosts). Only the ports change, through
the Caddyfile's own CADDY_HTTP_PORT / CADDY_HTTPS_PORT, so that no root-only
port and no port of this machine's is needed.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
from dataclasses import dataclass
from http.client import HTTPConnection, HTTPSConnection
from pathlib import Path

from .hosts import with_hosts
from .net import exchange, free_port, serving


def binary() -> str:
    path = shutil.which("caddy")
    if path is None:
        raise RuntimeError("caddy is not installed (scripts/bootstrap installs Debian's package)")
    return path


def _environment(home: Path, **ports: int) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
            "XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config"),
            **{f"CADDY_{name.upper()}_PORT": str(port) for name, port in ports.items()}}


def validate(caddyfile: Path) -> subprocess.CompletedProcess:
    """`caddy validate` of the file, as the container would load it."""
    home = Path(tempfile.mkdtemp(prefix="caddy-validate-"))
    try:
        return subprocess.run([binary(), "validate", "--config", str(caddyfile), "--adapter", "caddyfile"],
                              capture_output=True, text=True, timeout=60, env=_environment(home))
    finally:
        shutil.rmtree(home, ignore_errors=True)


def adapt(caddyfile: Path) -> dict:
    """The JSON configuration Caddy makes of the file."""
    result = subprocess.run([binary(), "adapt", "--config", str(caddyfile), "--adapter", "caddyfile"],
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise AssertionError(f"caddy adapt failed:\n{result.stderr}")
    return json.loads(result.stdout)


@dataclass
class Caddy:
    http_port: int
    https_port: int
    home: Path
    log_path: Path | None = None  # its output: the access log's JSON lines

    @property
    def root_certificate(self) -> Path:
        """The local CA's root, which signs the certificates of localhost sites."""
        return self.home / "data/caddy/pki/authorities/local/root.crt"

    def https(self, host: str, method: str, path: str, headers: dict[str, str] | None = None,
              body: bytes | None = None, source: str | None = None) -> tuple[int, dict[str, str], bytes]:
        """One HTTPS request to `host` (SNI and Host), trusting the local CA
        only; `source`: the client's address (any 127/8 address reaches
        loopback). (status, lower-cased headers, body)."""
        context = ssl.create_default_context(cafile=str(self.root_certificate))
        connection = HTTPSConnection("127.0.0.1", self.https_port, timeout=30, context=context)
        # SNI and certificate checks for `host`, the connection to loopback.
        connection.sock = context.wrap_socket(
            socket.create_connection(("127.0.0.1", self.https_port), timeout=30,
                                     source_address=(source, 0) if source else None),
            server_hostname=host)
        return exchange(connection, method, path, [("Host", host), *(headers or {}).items()], body, skip_host=True)

    def http(self, host: str, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
        """One plain-HTTP request to `host`."""
        return exchange(HTTPConnection("127.0.0.1", self.http_port, timeout=30), method, path, [("Host", host)],
                        skip_host=True)


@contextlib.contextmanager
def running(caddyfile: Path, hosts: dict[str, str], site: str = "localhost"):
    """`caddy run` of the rendered `caddyfile`, its upstream names resolved by
    `hosts` (name -> IP), on free ports; yields a Caddy once HTTPS answers for
    `site` with a certificate of Caddy's local CA."""
    home = Path(tempfile.mkdtemp(prefix="caddy-"))
    caddy = Caddy(free_port(), free_port(), home)

    def ready() -> bool:
        # Up once the local CA exists and a TLS handshake with it succeeds.
        if not caddy.root_certificate.exists():
            return False
        try:
            context = ssl.create_default_context(cafile=str(caddy.root_certificate))
            with socket.create_connection(("127.0.0.1", caddy.https_port), timeout=2) as raw:
                with context.wrap_socket(raw, server_hostname=site):
                    return True
        except (OSError, ssl.SSLError):
            return False

    try:
        with serving([*with_hosts(hosts), binary(), "run", "--config", str(caddyfile), "--adapter", "caddyfile"],
                     cwd=home, env=_environment(home, http=caddy.http_port, https=caddy.https_port),
                     ready=ready, timeout=60, name="caddy") as process:
            caddy.log_path = process.log_path
            yield caddy
    finally:
        shutil.rmtree(home, ignore_errors=True)
