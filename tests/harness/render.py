"""Rendering the template, through the API (pytest-copie) and the CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys
import warnings
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


# ---------------------------------------------------------------------------
# In-process rendering, for tests that render hundreds of answer sets
# ---------------------------------------------------------------------------
def template_copy(destination: Path, *, jinja_only: bool) -> Path:
    """The template as plain files (no git, so Copier does not clone it per
    render). With `jinja_only`, template/ keeps only the *.jinja files: the
    others are copied verbatim by Copier and hold no answer."""
    destination.mkdir(parents=True)
    shutil.copy(REPO / "copier.yml", destination)
    shutil.copytree(REPO / "includes", destination / "includes")
    for path in (REPO / "template").rglob("*"):
        if path.is_file() and (path.suffix == ".jinja" or not jinja_only):
            target = destination / path.relative_to(REPO)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
    return destination


def copy_in_process(template: Path, answers: dict, destination: Path) -> str | None:
    """`copier copy --defaults` with `answers`, in this process. Returns None
    when rendered, else the message Copier refuses the answers with."""
    from copier import run_copy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            run_copy(str(template), str(destination), data=answers, defaults=True, quiet=True, unsafe=False)
        except ValueError as error:  # Copier's "Validation error for question ..." and "Invalid choice ..."
            return str(error)
    return None


def validator(template: Path, question: str):
    """validator(answers) -> the message copier.yml's validator of `question`
    prints for `answers` ('' when accepted), in Copier's own Jinja
    environment: for checking thousands of values quickly."""
    from copier._main import Worker
    source = yaml.safe_load((template / "copier.yml").read_text())[question]["validator"]
    compiled = Worker(src_path=str(template), dst_path=str(template / "unused")).jinja_env.from_string(source)
    return lambda answers: compiled.render(**answers).strip()
