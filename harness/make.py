"""The generated project's Makefile, run with GNU make on this machine.

The docker tier (test_docker_*.py) runs its targets for real on
scripts/docker-engine's engine, with the docker CLI that DOCKER_HOST points
at it. The quicker tiers check what a target would run (`make -n`), and run
for real whatever does not need Docker, or runs against a fake `docker`.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path


def make(project: Path, *args: str, env: dict[str, str] | None = None,
         timeout: float = 60) -> subprocess.CompletedProcess:
    """`make ARGS` in the project; `env`: the whole environment (by default
    this process's, e.g. DOCKER_HOST; a PATH with a fake `docker` first)."""
    return subprocess.run(["make", "--no-print-directory", *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=timeout)


def commands(project: Path, target: str, **variables: str) -> list[list[str]]:
    """The commands `make <target>` would run, each split as the shell would."""
    result = make(project, "-n", target, *(f"{name}={value}" for name, value in variables.items()))
    assert result.returncode == 0, result.stderr
    return [shlex.split(line) for line in result.stdout.splitlines() if line.strip()]


def targets(project: Path) -> list[str]:
    """The targets `make help` lists, in its order."""
    result = make(project, "help")
    assert result.returncode == 0, result.stderr
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]
