"""Rendering the template, through the API (pytest-copie) and the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((REPO / "examples").glob("*.yml"))


def example_answers(name: str) -> dict:
    return yaml.safe_load((REPO / "examples" / f"{name}.yml").read_text())


def copier_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`copier ...` as a user types it: no --trust, no terminal."""
    return subprocess.run(
        [sys.executable, "-m", "copier", *args],
        capture_output=True, text=True, cwd=cwd, stdin=subprocess.DEVNULL, timeout=300,
    )


def data_args(answers: dict) -> list[str]:
    return [arg for key, value in answers.items() for arg in ("--data", f"{key}={value}")]


def project_files(project: Path) -> list[Path]:
    return sorted(p for p in project.rglob("*") if p.is_file() and ".git" not in p.parts)


def render_example(name: str, destination: Path) -> Path:
    """examples/<name>.yml rendered through the CLI, from HEAD plus uncommitted changes."""
    result = copier_cli("copy", "--defaults", "--vcs-ref", "HEAD", *data_args(example_answers(name)),
                        str(REPO), str(destination))
    if result.returncode != 0:
        raise RuntimeError(f"copier failed:\n{result.stderr}")
    return destination
