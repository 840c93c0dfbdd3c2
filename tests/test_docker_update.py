"""Updates of a running project, on the real engine and real git history:
`copier update` from the previous release, then `make db-up up`; and a new
PostgreSQL major through `copier update` and `make db-upgrade`."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from harness import engine
from harness.docker_stack import DATA, STATE, Names, run_make, status, teardown
from harness.template_git import clone_template, commit_all, generate, git, update

pytestmark = [pytest.mark.full, pytest.mark.docker]

# The CHANGELOG's 0.3.0: the release before this one.
PREVIOUS_RELEASE = "b9487da"


@pytest.fixture
def upstream(tmp_path) -> Path:
    clone = clone_template(tmp_path)
    git(clone, "tag", "v0", PREVIOUS_RELEASE)
    return clone


def without_syntax_line(project: Path) -> None:
    """The previous release's Dockerfiles start with `# syntax=docker/dockerfile:1`,
    which makes BuildKit fetch that frontend from Docker Hub, out of reach
    here: the team's copy drops the line (the update removes it too) and
    commits that."""
    for dockerfile in ("db/Dockerfile", "back/Dockerfile", "front/Dockerfile"):
        path = project / dockerfile
        path.write_text(path.read_text().replace("# syntax=docker/dockerfile:1\n", "", 1))
    commit_all(project, "build with the engine's own Dockerfile frontend")


@pytest.fixture
def running(docker_engine, upstream, tmp_path):
    """start(ref) -> a project generated at `ref`, committed, with the database,
    the backend and the frontend up and migrated; all removed afterwards."""
    started = []

    def start(ref: str) -> Path:
        project = generate(upstream, ref, tmp_path / "project")
        if ref == "v0":
            without_syntax_line(project)
        started.append(project)
        names = Names(project)
        run_make(project, "db-up")
        # the previous release's db-up returns at once: wait for (healthy), as its README said
        engine.wait_healthy(names.db)
        run_make(project, "up")
        run_make(project, "migrate")
        engine.wait_healthy(names.backend)
        names.psql(DATA)
        return project

    yield start
    for project in started:
        teardown(project)
    # the old major's volumes, which make db-upgrade keeps
    engine.docker("volume", "rm", "--force", "giga_db_data_16", "giga_db_pgbackrest_16", check=False)


def test_an_update_from_the_previous_release_rebuilds_serves_and_keeps_the_data(running):
    project = running("v0")
    names = Names(project)
    before = names.psql(STATE)
    update(project, "--vcs-ref", "v1")
    commit_all(project, "template update")
    run_make(project, "db-up")
    run_make(project, "up")
    run_make(project, "migrate")
    engine.wait_healthy(names.db)
    engine.wait_healthy(names.backend)
    engine.wait_healthy(names.frontend, timeout=240)
    assert names.psql(STATE) == before
    assert status(f"{names.api_url}/api/health/") == 200
    assert status(f"{names.front_url}/") == 200
    # what runs is what the update wrote: building the updated files again
    # (from the cache) gives the very images the containers run
    engine.docker("compose", "-f", "docker-compose.dev.yml", "build", "backend", "frontend", cwd=project)
    for service, container in (("backend", names.backend), ("frontend", names.frontend)):
        built = engine.inspect(f"{names.answers['project_slug']}_dev-{service}", "image")["Id"]
        assert engine.inspect(container)["Image"] == built, service
    # the CHANGELOG's Action for pgBackRest: the passphrase into db/.env, the
    # database restarted, a first full backup, which creates the repository
    with (project / "db/.env").open("a") as env:
        env.write(f"PGBACKREST_REPO1_CIPHER_PASS={secrets.token_hex(32)}\nPHYSICAL_BACKUP_INTERVAL=86400\n")
    run_make(project, "db-up")
    engine.wait_healthy(names.db)
    run_make(project, "db-backup-physical", "TYPE=full")
    check = engine.docker("exec", "-u", "postgres", names.db, "pgbackrest", "check", check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert names.psql(STATE) == before


def test_a_new_major_through_copier_update_and_make_db_upgrade_keeps_every_row(running):
    project = running("v1")
    names = Names(project)
    before = names.psql(STATE)
    assert names.psql("SHOW server_version_num")[:2] == "16"
    update(project, "--data", "postgres_version=18")
    commit_all(project, "PostgreSQL 18")
    run_make(project, "db-upgrade", "FROM=16", timeout=900)
    run_make(project, "up")
    engine.wait_healthy(names.db)
    assert names.psql("SHOW server_version_num")[:2] == "18"
    assert names.psql(STATE) == before
    for kept in ("giga_db_data_16", "giga_db_pgbackrest_16"):
        assert engine.exists(kept, "volume"), f"the old major's {kept} is kept"
    engine.wait_for(lambda: status(f"{names.api_url}/api/health/") == 200, 120, "the backend on 18")
