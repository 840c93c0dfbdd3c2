"""Run a rendered project's front/ natively: npm, and the built server on node.

The production image runs its CMD (`node build`) with the environment compose
gives the frontend (front/.env, then docker-compose.dev.yml's `environment:`);
so does `serve_front`, with the backend reached by its network alias (resolved
through a private /etc/hosts, see harness.hosts) and only the ports changed.
`serve_dev` runs the dev image's CMD (`vite dev`) the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from urllib.parse import urlsplit

from . import compose
from .dockerfile import dockerfile_stages
from .hosts import with_hosts
from .net import answering, free_port, serving

NPM_TIMEOUT = 900
MINIMUM_NODE = (20, 19)  # Vite 8


def npm(cwd: Path, *args: str, timeout: float = NPM_TIMEOUT, env: dict[str, str] | None = None) \
        -> subprocess.CompletedProcess:
    """`npm ARGS` in `cwd`; `env`: variables added to this process's."""
    if shutil.which("npm") is None:
        raise RuntimeError("npm is not installed (scripts/bootstrap installs it)")
    return subprocess.run(
        ["npm", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        env={**os.environ, "CI": "true", "NO_COLOR": "1", "FORCE_COLOR": "0", "npm_config_audit": "false",
             "npm_config_fund": "false", "npm_config_update_notifier": "false", **(env or {})},
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


@contextlib.contextmanager
def serve_front(project: Path, built: Path, backend_port: int, compose_file: str = "docker-compose.dev.yml",
                host: str = "127.0.0.1", port: int | None = None, backend_host: str = "127.0.0.1",
                origin: str | None = None, metrics_port: int | None = None, log: Path | None = None,
                environment: dict[str, str] | None = None):
    """The production image's CMD (`node build`) of `project`'s front/, built in
    `built`, with `compose_file`'s environment, calling the API on
    `backend_port` at the backend's alias (resolved to `backend_host`);
    listening on `host`:`port` (a free port by default), its metrics (if the
    compose file sets METRICS_PORT) on `host`:`metrics_port`; ORIGIN:
    `origin`, by default its own URL; its output to `log`, if given;
    `environment`: variables added to the compose file's. Yields its base URL."""
    port = port or free_port()
    base = f"http://{host}:{port}"
    env = compose.service_environment(project, compose_file, "frontend")
    backend_alias = urlsplit(env["INTERNAL_API_URL"]).hostname
    env = {**os.environ, **env, "PORT": str(port), "HOST": host,
           "ORIGIN": origin or base, "INTERNAL_API_URL": f"http://{backend_alias}:{backend_port}",
           **(environment or {})}
    if env.get("METRICS_PORT"):  # its own port here too, on the same address
        env.update(METRICS_PORT=str(metrics_port or free_port()), METRICS_HOST=host)
    command = dockerfile_stages(built / "Dockerfile")[""].cmd
    # Behind a proxy (ADDRESS_HEADER), every request must carry the header.
    probe = {env["ADDRESS_HEADER"]: "127.0.0.1"} if env.get("ADDRESS_HEADER") else {}
    with serving([*with_hosts({backend_alias: backend_host}), *command], cwd=built, env=env,
                 ready=answering(f"{base}/healthz", probe), timeout=30, name="front", log=log):
        yield base


@contextlib.contextmanager
def serve_dev(installed: Path, destination: Path, api_url: str):
    """The dev image's CMD (`vite dev`) on a copy of front/ that shares `installed`'s node_modules
    (vite writes .svelte-kit/ into the code, as in the bind-mounted container).
    Yields its base URL."""
    shutil.copytree(installed, destination, ignore=shutil.ignore_patterns("node_modules", "build", ".svelte-kit"))
    (destination / "node_modules").symlink_to(installed / "node_modules")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "INTERNAL_API_URL": api_url, "CI": "true", "NO_COLOR": "1"}
    # The dev image's CMD, on loopback and the free port.
    command = dockerfile_stages(installed / "Dockerfile")["dev"].cmd
    options = {"--host": "127.0.0.1", "--port": str(port)}
    command = [options.get(previous, arg) for previous, arg in zip(["", *command], command)]
    with serving(command, cwd=destination, env=env, ready=answering(f"{base}/healthz"), timeout=60, name="vite"):
        yield base
