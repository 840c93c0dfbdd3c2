"""`copier update` on real git history never loses a user's work or secrets.

A clone of this repository plays the template's upstream: v1 is tagged, the
project is rendered from it and committed, the team edits it, upstream ships
v2, and the project is updated through the CLI, as a maintainer would.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from harness.answers import recorded
from harness.render import REPO, copier_cli

ENV_FILES = ("db/.env", "back/.env", "front/.env")
GIT_IDENTITY = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *GIT_IDENTITY, *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "--allow-empty", "-qm", message)  # a clean checkout has nothing new


@pytest.fixture
def upstream(tmp_path) -> Path:
    """A clone of this template, with the working tree's changes, tagged v1."""
    clone = tmp_path / "upstream"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    shutil.copytree(REPO, clone, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".git", ".venv", "node_modules", "__pycache__"))
    commit_all(clone, "working tree")
    git(clone, "tag", "v1")
    return clone


@pytest.fixture
def project(upstream, tmp_path) -> Path:
    destination = tmp_path / "project"
    result = copier_cli("copy", "--defaults", "--vcs-ref", "v1", str(upstream), str(destination))
    assert result.returncode == 0, result.stderr
    git(destination, "init", "-q")
    commit_all(destination, "generated from v1")
    return destination


def snapshot(project: Path) -> dict[str, bytes]:
    return {name: (project / name).read_bytes() for name in ENV_FILES if (project / name).exists()}


def release(upstream: Path, path: str, line: str, tag: str) -> None:
    target = upstream / path
    target.write_text(target.read_text() + line)
    commit_all(upstream, f"upstream change to {path}")
    git(upstream, "tag", tag)


def update(project: Path, *args: str) -> subprocess.CompletedProcess:
    result = copier_cli("update", "--defaults", *args, cwd=project)
    assert result.returncode == 0, result.stderr
    return result


def test_update_keeps_secrets_and_the_teams_edits(upstream, project):
    secrets_before = snapshot(project)
    assert "db/.env" in secrets_before
    # the team's work: an edited env file (git-ignored), a README note, a file of its own
    db_env = project / "db/.env"
    db_env.write_text(db_env.read_text() + "# tuned by the team\n")
    secrets_before["db/.env"] = db_env.read_bytes()
    readme = project / "README.md"
    readme.write_text(readme.read_text() + "\n## Team notes\nKeep this.\n")
    (project / "db/init/30-team-seed.sql").write_text("SELECT 1;\n")
    conf = project / "db/postgresql.conf"
    conf.write_text(conf.read_text().replace("log_min_duration_statement = 500ms", "log_min_duration_statement = 250ms"))
    commit_all(project, "team work")

    release(upstream, "template/db/postgresql.conf.jinja", "# upstream v2 improvement\n", "v2")
    update(project, "--vcs-ref", "v2")

    assert snapshot(project) == secrets_before, "an update rewrote an env file"
    assert "## Team notes\nKeep this." in readme.read_text()
    assert (project / "db/init/30-team-seed.sql").exists()
    assert "# upstream v2 improvement" in conf.read_text(), "upstream's change is missing"
    assert "log_min_duration_statement = 250ms" in conf.read_text(), "the team's edit of the same file was lost"
    answers = recorded(project)
    assert answers["_commit"] == "v2"
    assert not {"db_password", "db_admin_password", "django_secret_key"} & set(answers)
    assert not list(project.rglob("*.rej")), "the update left conflicts"


def test_changing_an_answer_retunes_without_touching_secrets(upstream, project):
    secrets_before = snapshot(project)
    update(project, "--vcs-ref", "v1", "--data", "db_memory_mb=2048")
    conf = (project / "db/postgresql.conf").read_text()
    assert "shared_buffers = 512MB" in conf
    assert "mem_limit: 2048m" in (project / "db/docker-compose.yml").read_text()
    assert snapshot(project) == secrets_before

