"""The template and its generated projects on real git history, as a
maintainer and a team use them: a clone of this repository (the working tree
committed, tagged v1) plays the template's upstream, a project is generated
from a tag and committed, and `copier update` / `copier check-update` run
through the CLI (no --trust); then what an update left: the files, the env
files, and anything it could not merge.

Shared by the update tests (test_update.py, test_template_update_script.py,
test_release.py, test_docker_update.py).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from .render import REPO, copier_cli, project_files

ENV_FILES = ("db/.env", "back/.env", "front/.env")
GIT_IDENTITY = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
CONFLICT_MARKERS = ("<<<<<<< ", ">>>>>>> ")


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *GIT_IDENTITY, *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "--allow-empty", "-qm", message)  # a clean checkout has nothing new


def clone_template(tmp_path: Path) -> Path:
    """A clone of this template, with the working tree's changes, tagged v1."""
    clone = tmp_path / "upstream"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    # the working tree as it is, files it deleted or renamed included
    git(clone, "rm", "-rq", "--cached", ".")
    for path in clone.iterdir():
        if path.name != ".git":
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.copytree(REPO, clone, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".git", ".venv", "node_modules", "__pycache__"))
    commit_all(clone, "working tree")
    tags = git(clone, "tag", "--list").split()
    if tags:  # this repository's own releases would compete with the test's
        git(clone, "tag", "--delete", *tags)
    git(clone, "tag", "v1")
    return clone


def copy(template: Path, ref: str, destination: Path) -> subprocess.CompletedProcess:
    result = copier_cli("copy", "--defaults", "--vcs-ref", ref, str(template), str(destination))
    assert result.returncode == 0, result.stderr
    return result


def generate(upstream: Path, ref: str, destination: Path) -> Path:
    """`copier copy` of `upstream` at `ref`, committed in a new repository."""
    copy(upstream, ref, destination)
    git(destination, "init", "-q")
    commit_all(destination, f"generated from {ref}")
    return destination


def update(project: Path, *args: str) -> subprocess.CompletedProcess:
    result = copier_cli("update", "--defaults", *args, cwd=project)
    assert result.returncode == 0, result.stderr
    return result


def check_update(project: Path) -> dict:
    """`copier check-update`'s verdict: update_available, current_version, latest_version."""
    result = copier_cli("check-update", "--output-format", "json", cwd=project)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def snapshot(project: Path) -> dict[str, bytes]:
    """The env files (git-ignored, never rewritten by an update), byte for byte."""
    return {name: (project / name).read_bytes() for name in ENV_FILES if (project / name).exists()}


def contents(project: Path) -> dict[str, bytes]:
    return {p.relative_to(project).as_posix(): p.read_bytes() for p in project_files(project)}


def conflicted(project: Path) -> list[str]:
    """Files an update could not merge: *.rej files, and files with conflict markers."""
    found = []
    for name, data in contents(project).items():
        text = data.decode("utf-8", errors="replace")
        if name.endswith(".rej") or any(line.startswith(CONFLICT_MARKERS) for line in text.splitlines()):
            found.append(name)
    return found


def edit(path: Path, old: str, new: str) -> None:
    """A team's edit: the first `old` in the file replaced by `new` (which must be there)."""
    text = path.read_text()
    assert old in text, f"{path} no longer holds {old!r}"
    path.write_text(text.replace(old, new, 1))
