"""Major upgrades: `make db-upgrade FROM=<major>` starts the old server as that
major's own files do, refuses a wrong FROM or a missing volume before
changing anything, and db/README.md documents the steps and the rollback.
Full tier: db/bin/upgrade-from, as it runs in the new container, brings
every row from a real PostgreSQL 16 to a real 18, keeps the old data and
fails clearly, changing nothing, when it cannot.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import psycopg
import pytest

from harness import compose
from harness.answers import POSTGRES_VERSIONS, recorded, secrets as secrets_of
from harness.dockerfile import base_images
from harness.net import free_port
from harness.pg_builds import client_bindir
from harness.pg_clients import APP_DATA, admin_query, app_query, app_state, db_script
from harness.pg_container import dockerfile_image
from harness.postgres import PostgresServer, start_project_db


# ===========================================================================
# Quick tier
# ===========================================================================
def upgrade_plan(project: Path) -> dict[int, tuple[str, str]]:
    """scripts/db-upgrade's map, evaluated by bash: major -> (exact image, data mount)."""
    listing = subprocess.run(
        ["bash", "-c", 'eval "$(grep "^declare -A" "$1")"; for m in "${!images[@]}"; do echo "$m ${images[$m]} ${mounts[$m]}"; done',
         "bash", str(project / "scripts/db-upgrade")], capture_output=True, text=True, check=True).stdout
    return {int(major): (image, mount) for major, image, mount in map(str.split, listing.splitlines())}


def test_upgrade_script_starts_each_major_as_its_own_files_do(versioned_project, default_project):
    """The old server of `make db-upgrade FROM=<major>` runs the image that major's
    Dockerfile names, with the volume where that major's compose file mounts it."""
    plan = upgrade_plan(versioned_project)
    assert sorted(plan) == POSTGRES_VERSIONS
    assert plan == upgrade_plan(default_project), "the map does not depend on the rendered major"
    major = recorded(versioned_project)["postgres_version"]
    image, mount = plan[major]
    assert base_images(versioned_project / "db/Dockerfile") == [image]
    assert dockerfile_image(versioned_project / "db")[0] == major
    _, service = compose.db_service(versioned_project)
    assert f"db_data:{mount}" in service["volumes"]
    # the old server joins the database's network, where the new container reaches it
    script = (versioned_project / "scripts/db-upgrade").read_text()
    assert f"--network {service['networks'][0]} " in script
    assert f"docker exec {service['container_name']} upgrade-from " in script


def upgrade_script(project: Path, *args: str) -> subprocess.CompletedProcess:
    """scripts/db-upgrade with no engine answering: only what it does before Docker can run."""
    return subprocess.run([str(project / "scripts/db-upgrade"), *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=60, cwd=project)


@pytest.mark.parametrize("args, message", [
    ([], "usage: scripts/db-upgrade FROM"),
    (["14"], "usage: scripts/db-upgrade FROM"),
    (["16x"], "usage: scripts/db-upgrade FROM"),
    (["18"], "FROM must be an older major (got 18)"),
    (["16", "--yes"], "usage: scripts/db-upgrade FROM"),
], ids=["no FROM", "not offered", "not a major", "the current major", "unknown option"])
def test_db_upgrade_refuses_a_wrong_from_before_touching_docker(render, args, message):
    result = upgrade_script(render({"postgres_version": 18}), *args)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "docker" not in result.stderr.lower()


def test_db_upgrade_refuses_without_the_old_volume(render):
    """No engine answers, so no volume: the script stops at its first Docker call
    (test_docker_update.py runs the whole upgrade on the real engine)."""
    project = render({"postgres_version": 18})
    result = upgrade_script(project, "16")
    assert result.returncode == 1, result.stderr
    assert "cannot use the PostgreSQL 16 volume giga_db_data_16; nothing was changed" in result.stderr


def test_readme_documents_the_upgrade_its_rollback_and_the_old_volume(versioned_project):
    a = recorded(versioned_project)
    volumes = compose.load(versioned_project / "db/docker-compose.yml")["volumes"]
    major, volume, repository = a["postgres_version"], volumes["db_data"]["name"], volumes["db_pgbackrest"]["name"]
    section = (versioned_project / "db/README.md").read_text().split("## Upgrading PostgreSQL to a new major\n", 1)[1]
    newer = [v for v in POSTGRES_VERSIONS if v > major]
    target = str(newer[-1]) if newer else "<new>"
    commands = [line.split("#")[0].strip() for line in section.splitlines()]
    # the two steps, in order, from this major
    assert commands.index(f"copier update -d postgres_version={target}") < commands.index(f"make db-upgrade FROM={major}")
    # rollback: render the old major again; then delete its volumes (the data's and
    # pgBackRest's repository), by the names compose gives them
    assert f"copier update -d postgres_version={major}" in commands
    assert f"docker volume rm {volume} {repository}" in commands
    assert "{{" not in section


# ===========================================================================
# Full tier: db/bin/upgrade-from, as `make db-upgrade` runs it in the new
# container, from a real PostgreSQL 16 to a real 18
# ===========================================================================
@pytest.fixture(scope="module")
def upgrade_projects(render) -> tuple[Path, Path]:
    """The project at 16, and again at 18 with the same secrets, as `copier
    update -d postgres_version=18` leaves it (db/.env is never rewritten)."""
    old = render({"postgres_version": 16})
    return old, render({"postgres_version": 18, **secrets_of(old)})


@pytest.fixture(scope="module")
def old_db(upgrade_projects):
    """The 16 server, holding the app's data, written by the app role."""
    server = start_project_db(upgrade_projects[0])
    app_query(server, APP_DATA)
    yield server
    server.destroy()


@pytest.fixture
def new_db(upgrade_projects):
    """A first start of the 18 server: init/ has run, the app's database is empty."""
    server = start_project_db(upgrade_projects[1])
    yield server
    server.destroy()


def upgrade_from(new: PostgresServer, old_host: str, old_port: int, *args: str,
                 backup_dir: Path) -> subprocess.CompletedProcess:
    """In the new container: its environment, the Unix socket, the new major's client programs first."""
    return db_script(new, "upgrade-from", old_host, str(old_port), *args, container=True,
                     PATH=f"{client_bindir(new.major)}:{os.environ['PATH']}", BACKUP_DIR=str(backup_dir))


@pytest.mark.full
def test_upgrade_from_16_to_18_brings_every_row_and_keeps_the_old_data(old_db, new_db, tmp_path):
    assert (old_db.major, new_db.major) == (16, 18)
    original = app_state(old_db)
    assert original["users"][0] == 50 and original["orders"][0] == 4000
    result = upgrade_from(new_db, old_db.address, old_db.port, backup_dir=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 tables, the same row counts on both" in result.stdout
    assert app_state(new_db) == original  # row counts, checksums of every column, sequences, extension
    assert app_state(old_db) == original, "the old data is only read"
    # the dump is kept, owner-only, named for the upgrade, out of backup's retention and list-backups
    (dump,) = tmp_path.rglob("*.dump")
    assert dump.parent == tmp_path / "upgrades"
    listed = db_script(new_db, "list-backups", container=True, BACKUP_DIR=str(tmp_path))
    assert listed.returncode == 0 and dump.name not in listed.stdout, listed.stdout + listed.stderr
    assert re.fullmatch(rf"{new_db.app['dbname']}-pg16-to-pg18-\d{{8}}T\d{{6}}Z\.dump", dump.name)
    assert dump.stat().st_mode & 0o077 == 0
    # the objects belong to the app role, which keeps migrating them
    owners = app_query(new_db, "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
    assert owners == [(new_db.app["user"],)]
    app_query(new_db, "ALTER TABLE orders ADD COLUMN paid boolean; INSERT INTO users (email, joined) VALUES ('n@ew', now())")


def _other_password(old: PostgresServer):
    """The old server's app role has another password than db/.env's."""
    def set_password(password: str):
        admin_query(old, psycopg.sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            psycopg.sql.Identifier(old.app["user"]), psycopg.sql.Literal(password)))
    set_password("another password")
    return lambda: set_password(old.app["password"])


@pytest.mark.full
@pytest.mark.parametrize("point, message, reason", [
    (lambda old, new: (old.address, free_port()), "cannot connect to database 'giga' as 'giga_user' on the old server",
     "Connection refused"),
    (lambda old, new: (old.address, old.port, _other_password(old)),
     "cannot connect to database 'giga' as 'giga_user' on the old server", "password authentication failed"),
    (lambda old, new: (new.address, new.port), "the old server runs PostgreSQL 18 and this one 18: not an upgrade", ""),
], ids=["old server unreachable", "wrong password on the old server", "same major"])
def test_a_bad_upgrade_fails_clearly_and_changes_nothing(old_db, new_db, tmp_path, point, message, reason):
    before, original = app_state(new_db), app_state(old_db)
    host, port, *undo = point(old_db, new_db)
    try:
        result = upgrade_from(new_db, host, port, backup_dir=tmp_path)
    finally:
        for step in undo:
            step()
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr and "nothing was changed" in result.stderr, result.stderr
    assert reason in result.stderr, result.stderr
    assert app_state(new_db) == before and app_state(old_db) == original
    assert not list(tmp_path.rglob("*.dump")), "no dump is left behind"


@pytest.mark.full
def test_upgrade_refuses_a_database_with_tables_unless_forced(old_db, new_db, tmp_path):
    """E.g. the backend migrated the new, empty database before the upgrade."""
    app_query(new_db, "CREATE TABLE users (id int PRIMARY KEY, email text); INSERT INTO users VALUES (1, 'new@one')")
    before = app_state(new_db)
    refused = upgrade_from(new_db, old_db.address, old_db.port, backup_dir=tmp_path)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "already holds tables (1); nothing was changed" in refused.stderr, refused.stderr
    assert app_state(new_db) == before and not list(tmp_path.rglob("*.dump"))
    forced = upgrade_from(new_db, old_db.address, old_db.port, "--force", backup_dir=tmp_path)
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert app_state(new_db) == app_state(old_db)
