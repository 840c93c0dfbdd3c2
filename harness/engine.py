"""The real Docker engine of scripts/docker-engine, for the `docker` tier:
starting it, the docker CLI, and waiting on containers."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from .render import REPO

SCRIPT = REPO / "scripts/docker-engine"


def start() -> bool:
    """Start the engine (idempotent) and point this process's docker CLI at
    it. True when this call started the daemon, so the caller may stop it."""
    was_running = subprocess.run([SCRIPT, "status"], capture_output=True).returncode == 0
    result = subprocess.run([SCRIPT, "start"], capture_output=True, text=True, timeout=3600)
    if result.returncode != 0:
        raise RuntimeError(f"scripts/docker-engine start failed:\n{result.stderr[-4000:]}")
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("export DOCKER_HOST=")]
    os.environ["DOCKER_HOST"] = shlex.split(line.removeprefix("export "))[0].split("=", 1)[1]
    return not was_running


def stop() -> None:
    subprocess.run([SCRIPT, "stop"], capture_output=True, check=True, timeout=120)


def docker(*args: str, check: bool = True, timeout: float = 600, input: str | None = None,
           cwd: Path | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, input=input,
                            cwd=cwd)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {shlex.join(args)} failed ({result.returncode}):\n{result.stderr[-3000:]}")
    return result


def inspect(name: str, kind: str = "container") -> dict:
    return json.loads(docker(kind, "inspect", name).stdout)[0]


def exists(name: str, kind: str = "container") -> bool:
    return docker(kind, "inspect", name, check=False).returncode == 0


def health(container: str) -> str:
    """'healthy', 'unhealthy', 'starting', 'none' (no healthcheck) or 'missing'."""
    result = docker("inspect", "--format", "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}",
                    container, check=False)
    return result.stdout.strip() if result.returncode == 0 else "missing"


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.5,
             diagnose: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s\n{diagnose()}")
        time.sleep(interval)


def logs(container: str, tail: int = 60) -> str:
    result = docker("logs", "--tail", str(tail), container, check=False)
    return result.stdout + result.stderr


def wait_healthy(container: str, timeout: float = 180) -> None:
    wait_for(lambda: health(container) == "healthy", timeout, f"{container} healthy",
             diagnose=lambda: f"state: {health(container)}\n{logs(container)}")


def networks(container: str) -> set[str]:
    return set(inspect(container)["NetworkSettings"]["Networks"])


def compose_down(directory: Path, *files: str, volumes: bool = True) -> None:
    """`docker compose [-f FILE...] down` with every profile, leaving nothing running."""
    args = [arg for name in files for arg in ("-f", name)]
    docker("compose", *args, "--profile", "*", "down", "--remove-orphans", "--timeout", "5",
           *(["--volumes"] if volumes else []), cwd=directory, check=False, timeout=300)
