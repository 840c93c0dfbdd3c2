"""Logical backups: db/bin/'s backup, list-backups and restore are in the image,
write owner-only dumps to a git-ignored host directory and keep the newest
BACKUP_KEEP; the `backup` profile runs backup-every as the app role. Full
tier, against a real server of the client tools' major: a restore brings
back dropped tables and deleted rows, a bad one fails clearly and changes
nothing, retention deletes only backup's own dumps, and backup-every keeps
valid dumps, retries a failed one and stops promptly on SIGTERM.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from harness import compose, dotenv
from harness.answers import POSTGRES_VERSIONS, recorded
from harness.pg_clients import APP_DATA, app_query, app_state, db_script, resolved_environment
from harness.postgres import PostgresServer, start_project_db
from harness.processes import stop_promptly


# ===========================================================================
# Quick tier
# ===========================================================================
BACKUP_SCRIPTS = ("backup", "list-backups", "restore")


# upgrade-from: see make db-upgrade; the physical ones: test_db_pitr.py;
# restore-drill and table-row-counts (which upgrade-from uses too): test_db_drill.py
DB_SCRIPTS = (*BACKUP_SCRIPTS, "upgrade-from", "backup-physical", "list-backups-physical", "pitr", "restore-drill",
              "table-row-counts")


# The `backup` profile's command, not run by hand.
SCHEDULED_BACKUP = "backup-every"


SCHEDULED_PHYSICAL_BACKUP = "backup-physical-every"


def test_backup_scripts_are_installed_in_the_image(versioned_project):
    """db/bin/ is copied, executable, onto the image's PATH, for `docker exec <db> backup`."""
    db_dir = versioned_project / "db"
    scripts = (*DB_SCRIPTS, SCHEDULED_BACKUP, SCHEDULED_PHYSICAL_BACKUP)
    assert sorted(p.name for p in (db_dir / "bin").iterdir()) == sorted(scripts)
    for name in scripts:
        assert os.stat(db_dir / "bin" / name).st_mode & stat.S_IXUSR, name
    assert "COPY --chmod=0755 bin/ /usr/local/bin/" in (db_dir / "Dockerfile").read_text().splitlines()


def test_backups_land_in_a_git_ignored_host_directory(default_project, tmp_path):
    """backup writes to /backups (BACKUP_DIR's default), which compose mounts from db/backups."""
    _, service = compose.db_service(default_project)
    assert "./backups:/backups" in service["volumes"]
    assert re.search(r'^backup_dir="\$\{BACKUP_DIR:-/backups\}"$', (default_project / "db/bin/backup").read_text(), re.M)
    shutil.copy(default_project / ".gitignore", tmp_path / ".gitignore")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    ignored = subprocess.run(["git", "-C", str(tmp_path), "check-ignore", "--no-index", "db/backups/giga-20260101T000000Z.dump",
                              "db/backups/.gitkeep", "db/bin/backup", "db/.env.example"],
                             capture_output=True, text=True).stdout.split()
    assert ignored == ["db/backups/giga-20260101T000000Z.dump"]
    # the directory ships, so the bind mount is the team's, not created by Docker as root
    assert (default_project / "db/backups/.gitkeep").is_file()


def test_readme_documents_the_backup_scripts_by_their_installed_names(default_project, render_jinja):
    for project in (default_project, render_jinja({"db_host_port": 0})):
        a = recorded(project)
        section = (project / "db/README.md").read_text().split("## Backups", 1)[1].split("\n## ", 1)[0]
        documented = set(re.findall(rf"docker exec (?:-it )?{a['project_slug']}_db_dev ([\w-]+)", section))
        assert documented == set(BACKUP_SCRIPTS), documented
        assert "pg_restore -U" not in section and "{{" not in section
        assert re.search(r"^PGHOST=\S+ PGPORT=\S+ ", section, re.M), section


def test_backup_keep_is_documented_and_set(default_project):
    for name in (".env", ".env.example"):
        assert dotenv.load(default_project / "db" / name)["BACKUP_KEEP"] == "7", name


def test_backup_service_is_the_db_image_running_backup_every_as_the_app_role(versioned_project):
    a = recorded(versioned_project)
    db_env = compose.environments(versioned_project)["db"]
    _, db = compose.db_service(versioned_project)
    _, backup = compose.profile_services(versioned_project)["backup"]
    assert backup["image"] == db["image"] and "build" not in backup and backup["pull_policy"] == "never"
    assert backup["command"] == [SCHEDULED_BACKUP]
    backups_mount = [volume for volume in db["volumes"] if volume.endswith(":/backups")]
    assert backup["volumes"] == backups_mount == ["./backups:/backups"]
    assert resolved_environment(versioned_project, backup) == {
        "PGHOST": a["db_service"], "PGPORT": str(a["db_port"]), "PGDATABASE": db_env["POSTGRES_DB"],
        "PGUSER": db_env["APP_DB_USER"], "PGPASSWORD": db_env["APP_DB_PASSWORD"],
        "BACKUP_KEEP": db_env["BACKUP_KEEP"], "BACKUP_INTERVAL": db_env["BACKUP_INTERVAL"]}
    # root writing into the host's ./backups, like `docker exec <db> backup`; nothing else
    assert backup["cap_add"] == ["DAC_OVERRIDE"] and "DAC_OVERRIDE" in db["cap_add"]


@pytest.mark.parametrize("interval", ["0", "-5", "1h", "1.5", "ten", " 60"])
def test_backup_every_refuses_a_bad_interval_before_any_dump(default_project, tmp_path, interval):
    result = subprocess.run([str(default_project / "db/bin" / SCHEDULED_BACKUP)], capture_output=True, text=True,
                            timeout=10, env={"PATH": os.environ["PATH"], "BACKUP_INTERVAL": interval,
                                             "BACKUP_DIR": str(tmp_path)})
    assert result.returncode == 2, result
    assert f"BACKUP_INTERVAL must be a positive whole number of seconds, not '{interval}'" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_backup_interval_is_documented_and_set(default_project):
    for name in (".env", ".env.example"):
        assert dotenv.load(default_project / "db" / name)["BACKUP_INTERVAL"] == "86400", name


# ===========================================================================
# Full tier: backup and restore, the rendered db/bin/ scripts against a real server
# ===========================================================================
def client_major() -> int:
    """pg_dump and pg_restore on this machine: the server must be of their major."""
    out = subprocess.run(["pg_dump", "--version"], capture_output=True, text=True, check=True).stdout
    return int(re.search(r"\) (\d+)", out).group(1))


@pytest.fixture(scope="module")
def backup_db(render):
    """A project of the client tools' major, its server started; the scripts run from db/bin/."""
    major = client_major()
    assert major in POSTGRES_VERSIONS, f"pg_dump {major} matches no offered postgres_version"
    server = start_project_db(render({"postgres_version": major}))
    yield server
    server.destroy()


DAMAGE = "DROP TABLE orders; DELETE FROM users WHERE id % 2 = 0; INSERT INTO users (email, joined) VALUES ('x@y', now())"


@pytest.fixture
def backed_up(backup_db, tmp_path):
    """The app's data written and backed up; returns (server, the dump, the state it holds)."""
    app_query(backup_db, APP_DATA)
    result = db_script(backup_db, "backup", BACKUP_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr
    (dump,) = tmp_path.glob("*.dump")
    return backup_db, dump, app_state(backup_db)


@pytest.mark.full
@pytest.mark.parametrize("container", [False, True], ids=["host", "container"])
def test_restore_brings_back_dropped_tables_and_deleted_rows(backed_up, container):
    server, dump, original = backed_up
    assert original["users"][0] == 50 and original["orders"][0] == 4000
    assert ("pg_stat_statements", server.admin["user"]) in original["extensions"]
    app_query(server, DAMAGE)
    assert app_state(server) != original
    # as documented: in the container, the name list-backups prints; on a host, a path
    result = db_script(server, "restore", dump.name if container else str(dump), "--yes", container=container,
                       BACKUP_DIR=str(dump.parent))
    # the dump holds pg_stat_statements, which the app role does not own: skipped, not an error
    assert result.returncode == 0, result.stderr
    assert "error" not in result.stderr.lower(), result.stderr
    assert app_state(server) == original
    # the restored objects belong to the app role, which keeps migrating them
    owners = app_query(server, "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public'")
    assert owners == [(server.app["user"],)]
    app_query(server, "ALTER TABLE orders ADD COLUMN paid boolean; INSERT INTO users (email, joined) VALUES ('n@ew', now())")


def _truncate(keep: float):
    def damage(dump: Path) -> Path:
        data = dump.read_bytes()
        broken = dump.with_name("broken.dump")
        broken.write_bytes(data[:int(len(data) * keep)] if keep > 0 else data[:keep])
        return broken
    return damage


def _garbage(dump: Path) -> Path:
    broken = dump.with_name("notes.dump")
    broken.write_text("not a dump\n")
    return broken


BAD_RESTORES = {
    # (what replaces the good dump, extra arguments/environment, the message expected)
    "missing file": (lambda dump: dump.with_name("nope.dump"), {}, "no such dump"),
    "cut in its header": (_truncate(0.002), {}, "not a complete pg_dump"),
    "cut in its data": (_truncate(0.6), {}, "not a complete pg_dump"),
    "cut at the very end": (_truncate(-20), {}, "not a complete pg_dump"),
    "not a dump": (_garbage, {}, "not a complete pg_dump"),
    # in the container, PGDATABASE wins over db/.env's POSTGRES_DB
    "another database's dump": (lambda dump: dump, {"container": True, "PGDATABASE": "postgres"},
                                "is a dump of database 'giga', not of 'postgres'"),
    "wrong password": (lambda dump: dump, {"PGPASSWORD": "wrong"}, "cannot connect"),
}


@pytest.mark.full
@pytest.mark.parametrize("breaks, env, message", BAD_RESTORES.values(), ids=BAD_RESTORES.keys())
def test_a_bad_restore_fails_clearly_and_changes_nothing(backed_up, breaks, env, message):
    server, dump, _ = backed_up
    app_query(server, DAMAGE)
    current = app_state(server)
    result = db_script(server, "restore", str(breaks(dump)), "--yes", **env)
    assert result.returncode != 0
    assert message in result.stderr and "nothing was changed" in result.stderr, result.stderr
    assert app_state(server) == current


@pytest.mark.full
def test_restore_asks_first_and_needs_yes_without_a_terminal(backed_up):
    server, dump, _ = backed_up
    app_query(server, DAMAGE)
    current = app_state(server)
    result = db_script(server, "restore", str(dump))
    assert result.returncode == 1 and "confirm with --yes" in result.stderr, result.stderr
    assert app_state(server) == current


@pytest.mark.full
@pytest.mark.parametrize("container", [False, True], ids=["host", "container"])
def test_backup_keeps_the_newest_backup_keep_and_lists_them_newest_first(backup_db, tmp_path, container):
    db = backup_db.app["dbname"]
    older = [f"{db}-2026010{day}T030000Z.dump" for day in range(1, 6)]
    others = ["other-20260101T000000Z.dump", "notes.txt", f"{db}-manual.sql"]
    for name in older + others:
        (tmp_path / name).write_bytes(b"x" * 2048)
    result = db_script(backup_db, "backup", container=container, BACKUP_DIR=str(tmp_path), BACKUP_KEEP="3")
    assert result.returncode == 0, result.stderr
    new = re.search(rf"({db}-\d{{8}}T\d{{6}}Z\.dump)", result.stdout).group(1)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([new, *older[-2:], *others])
    assert (tmp_path / new).stat().st_mode & 0o077 == 0, "a dump holds all the data: owner only"
    listed = db_script(backup_db, "list-backups", container=container, BACKUP_DIR=str(tmp_path))
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [name for name, _ in rows] == [new, older[-1], older[-2]]
    assert all(re.fullmatch(r"\d+(\.\d+)?[KMG]?", size) for _, size in rows), rows


@pytest.mark.full
def test_backup_retention_deletes_only_the_dumps_it_wrote(backup_db, tmp_path):
    """A dump made by hand before a migration, a copy, a name that only starts
    like backup's: retention neither counts nor deletes them, however old;
    only <db>-<UTC time>.dump, the names backup writes, are pruned."""
    db = backup_db.app["dbname"]
    generated = [f"{db}-2026010{day}T030000Z.dump" for day in range(1, 6)]
    by_hand = [f"{db}-before-migration.dump", f"{db}-20260101.dump", f"{db}-manual-20260101T000000Z.dump",
               f"{db}-old-20260101T030000Z.dump", f"{db}-20260101T030000Z-copy.dump", f"{db}-2026010xT030000Z.dump",
               f"{db}-20260101T030000Z.dump.bak", f"{db}-20260101T0300000Z.dump"]
    for name in generated + by_hand:
        (tmp_path / name).write_bytes(b"x" * 2048)
        os.utime(tmp_path / name, (946684800, 946684800))  # 2000-01-01: older than any new dump
    result = db_script(backup_db, "backup", BACKUP_DIR=str(tmp_path), BACKUP_KEEP="2")
    assert result.returncode == 0, result.stderr
    new = re.search(rf"({db}-\d{{8}}T\d{{6}}Z\.dump)", result.stdout).group(1)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([new, generated[-1], *by_hand])
    deleted = re.findall(r"deleted \S*/(\S+) ", result.stdout)
    assert sorted(deleted) == sorted(generated[:-1]), result.stdout


@pytest.mark.full
@pytest.mark.parametrize("env, message", [({"PGPASSWORD": "wrong"}, "password authentication failed"),
                                          ({"BACKUP_KEEP": "0"}, "BACKUP_KEEP must be a positive whole number"),
                                          ({"BACKUP_KEEP": "three"}, "BACKUP_KEEP must be a positive whole number")],
                         ids=["dump fails", "keep none", "keep nonsense"])
def test_a_failed_backup_deletes_no_older_dump(backup_db, tmp_path, env, message):
    db = backup_db.app["dbname"]
    older = {f"{db}-2026010{day}T030000Z.dump" for day in range(1, 4)}
    for name in older:
        (tmp_path / name).write_bytes(b"x")
    result = db_script(backup_db, "backup", BACKUP_DIR=str(tmp_path), **{"BACKUP_KEEP": "1", **env})
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert {p.name for p in tmp_path.iterdir()} == older


# ---------------------------------------------------------------------------
# The `backup` profile: bin/backup-every against the real server
# ---------------------------------------------------------------------------
def start_backup_every(server: PostgresServer, backup_dir: Path, log: Path, **env: str) -> subprocess.Popen:
    """bin/backup-every as the profile's service runs it: the app role over the network."""
    connection = {"PGHOST": server.address, "PGPORT": str(server.port), "PGUSER": server.app["user"],
                  "PGPASSWORD": server.app["password"], "PGDATABASE": server.app["dbname"]}
    return subprocess.Popen([str(server.db_dir / "bin" / SCHEDULED_BACKUP)], stdin=subprocess.DEVNULL,
                            stdout=log.open("w"), stderr=subprocess.STDOUT,
                            env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8", **connection,
                                 "BACKUP_DIR": str(backup_dir), **env})


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return result


@pytest.mark.full
def test_backup_every_keeps_the_newest_backup_keep_valid_dumps_and_stops_on_sigterm(backup_db, tmp_path):
    app_query(backup_db, APP_DATA)
    backups, log = tmp_path / "backups", tmp_path / "log"
    process = start_backup_every(backup_db, backups, log, BACKUP_KEEP="2", BACKUP_INTERVAL="1")
    made: list[str] = []
    try:
        def four_dumps():
            made.extend(name for name in re.findall(r"^backup: \S+/(\S+\.dump) ", log.read_text(), re.M)
                        if name not in made)
            return len(made) >= 4
        wait_for(four_dumps, 60, "four scheduled dumps")
    finally:
        elapsed = stop_promptly(process)
    assert elapsed < 3, f"SIGTERM took {elapsed:.1f}s"
    assert "backup-every: stopping" in log.read_text()
    kept = sorted(p.name for p in backups.iterdir())
    assert kept == sorted(made)[-2:], (kept, made)
    for name in kept:
        listed = subprocess.run(["pg_restore", "--list", str(backups / name)], capture_output=True, text=True)
        assert listed.returncode == 0 and "TABLE DATA public orders" in listed.stdout, listed.stderr


@pytest.mark.full
def test_backup_every_logs_a_failed_dump_and_tries_again(backup_db, tmp_path):
    log = tmp_path / "log"
    process = start_backup_every(backup_db, tmp_path / "backups", log, PGPASSWORD="wrong", BACKUP_INTERVAL="1")
    try:
        wait_for(lambda: log.read_text().count("backup-every: backup failed (exit 1); next try in 1s") >= 2, 30,
                 "two failed attempts")
        assert process.poll() is None, "the loop outlives a failed dump"
    finally:
        stop_promptly(process)
    assert "password authentication failed" in log.read_text()
    assert not list((tmp_path / "backups").glob("*.dump"))


@pytest.mark.full
def test_backup_every_stops_a_running_dump_on_sigterm_and_leaves_no_partial_file(backup_db, tmp_path):
    """A dump blocked on a lock is in progress for as long as the test wants: SIGTERM ends it and backup's cleanup runs."""
    app_query(backup_db, APP_DATA)
    backups, log = tmp_path / "backups", tmp_path / "log"
    app = backup_db.app
    with psycopg.connect(host=backup_db.address, port=backup_db.port, user=app["user"], password=app["password"],
                         dbname=app["dbname"]) as lock:  # one transaction, until the block ends
        lock.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        process = start_backup_every(backup_db, backups, log, BACKUP_INTERVAL="3600")
        try:
            wait_for(lambda: app_query(backup_db, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'pg_dump'"
                                                  " AND wait_event_type = 'Lock'")[0][0], 30, "pg_dump waiting on the lock")
        finally:
            elapsed = stop_promptly(process)
        assert elapsed < 3, f"SIGTERM took {elapsed:.1f}s"
        wait_for(lambda: not app_query(backup_db, "SELECT count(*) FROM pg_stat_activity"
                                                  " WHERE application_name = 'pg_dump'")[0][0], 10, "pg_dump to end")
    assert list(backups.iterdir()) == [], "no dump and no partial file"
