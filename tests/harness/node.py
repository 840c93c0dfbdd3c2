"""Run a rendered project's front/ natively: npm, and the built server on node.

The production image runs `node build` with front/.env's settings; so does
`serve_front`, with the backend reached by its network alias (resolved through
a private /etc/hosts, see harness.hosts) and only the ports changed.
`serve_dev` runs `vite dev` as the dev image does.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from . import dotenv
from .hosts import with_hosts

NPM_TIMEOUT = 900
MINIMUM_NODE = (20, 19)  # Vite 8


def npm(cwd: Path, *args: str, timeout: float = NPM_TIMEOUT) -> subprocess.CompletedProcess:
    if shutil.which("npm") is None:
        raise RuntimeError("npm is not installed (scripts/bootstrap installs it)")
    return subprocess.run(
        ["npm", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        env={**os.environ, "CI": "true", "NO_COLOR": "1", "FORCE_COLOR": "0", "npm_config_audit": "false",
             "npm_config_fund": "false", "npm_config_update_notifier": "false"},
    )


def shown(result: subprocess.CompletedProcess) -> str:
    return f"$ {' '.join(map(str, result.args))} -> {result.returncode}\n{result.stdout[-8000:]}\n{result.stderr[-8000:]}"


def require_node(front: Path) -> None:
    engines = json.loads((front / "package.json").read_text())["engines"]["node"]
    version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    if tuple(map(int, version.lstrip("v").split(".")[:2])) < MINIMUM_NODE:
        raise RuntimeError(f"node {version} is too old for front/ (engines: {engines})")


def install(front: Path, destination: Path) -> Path:
    """A private copy of front/ with `npm ci` done (npm writes into it)."""
    require_node(front)
    shutil.copytree(front, destination)
    result = npm(destination, "ci")
    if result.returncode != 0:
        raise RuntimeError(f"npm ci failed:\n{shown(result)}")
    return destination


def build(installed: Path) -> Path:
    result = npm(installed, "run", "build")
    if result.returncode != 0:
        raise RuntimeError(f"npm run build failed:\n{shown(result)}")
    return installed


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up:\n{log.read_text()}")
        time.sleep(0.2)


@contextlib.contextmanager
def _serving(command: list[str], cwd: Path, env: dict[str, str], ready_url: str, timeout: float = 30):
    log = Path(tempfile.mkstemp(prefix="front-", suffix=".log")[1])
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=cwd, env={**os.environ, **env}, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    process.log_path = log
    try:
        wait_for_http(ready_url, process, log, timeout)
        yield process
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # its own session: vite's esbuild goes too
        process.wait(timeout=10)


@contextlib.contextmanager
def serve_front(built: Path, backend_alias: str, backend_port: int):
    """`node build` as the production image runs it; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**dotenv.load(built / ".env"), "PORT": str(port), "HOST": "127.0.0.1",
           "ORIGIN": base, "INTERNAL_API_URL": f"http://{backend_alias}:{backend_port}"}
    with _serving([*with_hosts({backend_alias: "127.0.0.1"}), "node", "build"], built, env,
                  f"{base}/healthz"):
        yield base


@contextlib.contextmanager
def serve_dev(installed: Path, destination: Path, api_url: str):
    """`vite dev` on a copy of front/ that shares `installed`'s node_modules
    (vite writes .svelte-kit/ into the code, as in the bind-mounted container).
    Yields its base URL."""
    shutil.copytree(installed, destination, ignore=shutil.ignore_patterns("node_modules", "build", ".svelte-kit"))
    (destination / "node_modules").symlink_to(installed / "node_modules")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {"INTERNAL_API_URL": api_url, "CI": "true", "NO_COLOR": "1"}
    with _serving(["node_modules/.bin/vite", "dev", "--host", "127.0.0.1", "--port", str(port)],
                  destination, env, f"{base}/healthz", timeout=60):
        yield base
