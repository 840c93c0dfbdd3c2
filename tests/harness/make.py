"""The generated project's Makefile, run with GNU make on this machine.

No Docker engine here: `make -n` prints the commands a target would run, so
tests check them, and run whatever does not need Docker for real.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path


def make(project: Path, *args: str, env: dict[str, str] | None = None,
         timeout: float = 60) -> subprocess.CompletedProcess:
    """`make ARGS` in the project; `env`: the whole environment (e.g. a PATH
    with harness.docker_shim's `docker` first)."""
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
