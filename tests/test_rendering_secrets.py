"""Quick tier: the secrets a render generates are long, random and distinct,
absent from the answers file and from the .env.example files, held only in
git-ignored env files that hold nothing derived from an answer, and those
files are never touched by updates.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


from harness.answers import secrets as secrets_of
from harness import compose, dotenv
from harness.render import SECRET_QUESTIONS, REPO
from harness.rendered import read_yaml, rendered_text_files


# ---------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------
def test_secrets_are_long_random_and_distinct(render, default_project):
    first = secrets_of(default_project)
    again = secrets_of(render({"project_name": "Giga"}))  # same answers, another render
    for name, value in first.items():
        assert re.fullmatch(r"[0-9a-f]{64}", value), f"{name} is not 32 random bytes in hex: {value!r}"
        assert value != again[name], f"{name} repeats across renders"
    assert len(set(first.values())) == len(first) == 4, "each role has its own password, the backups their passphrase"


def test_secrets_never_reach_the_answers_file(default_project):
    text = (default_project / ".copier-answers.yml").read_text()
    for question in SECRET_QUESTIONS:
        assert question not in text
    for value in secrets_of(default_project).values():
        assert value not in text


def test_secrets_live_only_in_git_ignored_env_files(default_project, tmp_path):
    secrets = set(secrets_of(default_project).values())
    holders = {p.relative_to(default_project).as_posix()
               for p, text in rendered_text_files(default_project) if any(s in text for s in secrets)}
    assert holders and all(Path(h).name == ".env" for h in holders), holders
    # git, in a fresh repository of the project, must ignore exactly those files
    work = tmp_path / "repo"
    subprocess.run(["cp", "-a", str(default_project), str(work)], check=True)
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    subprocess.run(["git", "-C", str(work), "add", "-A"], check=True)
    tracked = subprocess.run(["git", "-C", str(work), "ls-files"], capture_output=True, text=True,
                             check=True).stdout.split()
    assert not holders & set(tracked), "an env file with secrets would be committed"
    assert "db/.env.example" in tracked


def test_env_examples_hold_placeholders_only(default_project):
    secrets = secrets_of(default_project)
    examples = sorted(default_project.rglob(".env.example"))
    assert [example.parent.name for example in examples] == ["back", "db", "front"]
    for example in examples:
        text = example.read_text()
        assert not any(s in text for s in secrets.values()), example
    for example in examples[:2]:
        real = dotenv.load(example.with_name(".env"))
        assert set(dotenv.load(example)) == set(real), f"{example} must list the same variables as .env"
    # front/.env holds the team's own values only; its example is for running
    # outside Docker, with what compose sets in Docker
    assert dotenv.load(default_project / "front/.env") == {}
    frontend = compose.load(default_project / "docker-compose.dev.yml")["services"]["frontend"]
    assert set(dotenv.load(examples[2])) == set(frontend["environment"])


def test_env_files_hold_no_value_derived_from_an_answer(default_project):
    """Whatever the answers decide lives in the compose files, which updates
    maintain; the env files, which updates skip, keep secrets and the team's
    own settings."""
    derived = {"POSTGRES_USER", "POSTGRES_DB", "APP_DB_USER", "MONITOR_DB_USER", "DB_HOST", "DB_PORT", "DB_NAME",
               "DB_USER", "DJANGO_SETTINGS_MODULE", "DJANGO_ALLOWED_HOSTS", "DJANGO_CSRF_TRUSTED_ORIGINS",
               "DJANGO_TRUSTED_PROXIES", "DJANGO_LANGUAGE_CODE", "TZ", "DJANGO_ADMIN_EMAIL", "INTERNAL_API_URL",
               "PORT", "ORIGIN", "PUBLIC_PROJECT_NAME"}
    environments = compose.environments(default_project)
    for env_file, role in (("db/.env", "db"), ("back/.env", "backend"), ("front/.env", "frontend")):
        assert set(dotenv.load(default_project / env_file)) & derived == set(), env_file
        assert derived & set(environments[role]), f"the {role} gets none of its answers' values"
    assert derived <= set().union(*environments.values())


def test_env_files_are_protected_from_updates():
    config = read_yaml(REPO / "copier.yml")
    for env_file in ("db/.env", "back/.env", "front/.env"):
        assert env_file in config["_skip_if_exists"]
