"""db/: restore drills (bin/restore-drill), natively.

Quick tier: the script is in the image, the schedule runs it after each
backup, `make db-drill` runs one, production's healthcheck asks for it.

Full tier (`full`): the real pgbackrest and real PostgreSQL servers of the
rendered db/, as tests/test_db_pitr.py starts them (harness.pitr's Archived): the
drill restores the newest backup into a scratch server beside the live one,
compares the row counts, deletes the copy and records the result.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness import compose, make
from harness.answers import recorded
from harness.pitr import Archived, corrupt_backup, rows, write_rows


# ===========================================================================
# Quick tier
# ===========================================================================
def test_the_drill_is_in_the_image_scheduled_after_each_backup_and_a_make_target(default_project):
    a = recorded(default_project)
    bin_dir = default_project / "db/bin"
    for name in ("restore-drill", "table-row-counts"):
        assert os.access(bin_dir / name, os.X_OK), name
    every = (bin_dir / "backup-physical-every").read_text()
    assert '"$here/restore-drill" &' in every
    assert make.commands(default_project, "db-drill") == [
        ["docker", "exec", "-u", "postgres", f"{a['project_slug']}_db_dev", "restore-drill"]]
    # upgrade-from compares with the same counts
    assert '"$(dirname "$0")/table-row-counts"' in (bin_dir / "upgrade-from").read_text()
    prod = compose.load_override(default_project / "db/docker-compose.prod.yml")["services"]["backup-physical"]
    assert prod["healthcheck"]["test"][1].endswith("&& restore-drill --check")
    readme = (default_project / "db/README.md").read_text()
    section = readme.split("### Restore drills", 1)[1].split("\n## ", 1)[0]
    for documented in ("make db-drill", "restore-drill --check", "restore point", "archive_mode=off"):
        assert documented in section, documented


def test_the_check_refuses_without_a_drill_and_bad_arguments(default_project, tmp_path):
    script = str(default_project / "db/bin/restore-drill")
    env = {"PATH": os.environ["PATH"], "RESTORE_DRILL_STATUS": str(tmp_path / "none")}
    result = subprocess.run([script, "--check"], capture_output=True, text=True, timeout=10, env=env)
    assert result.returncode == 1 and "no drill has run yet" in result.stderr, result.stderr
    result = subprocess.run([script, "--now"], capture_output=True, text=True, timeout=10, env=env)
    assert result.returncode == 2 and "usage: restore-drill [--check]" in result.stderr


# ===========================================================================
# Full tier (pitr_project: conftest's)
# ===========================================================================
@pytest.fixture
def drilled(pitr_project):
    db = Archived(pitr_project)
    yield db
    db.destroy()


def drill(db: Archived, *args: str, **env: str) -> subprocess.CompletedProcess:
    # the server's own binaries first: pg_ctl starts the scratch copy with them
    path = f"{db.server.bindir}:{db.bin}:{os.environ['PATH']}"
    return db.script("restore-drill", *args, PATH=path, **env)


def status(db: Archived) -> list[str]:
    return (db.repo / "restore-drill.status").read_text().split(" ", 3)


def archive_files(db: Archived) -> set[str]:
    return {p.name for p in db.repo.glob("archive/*/*/*/*")}


def healthcheck(db: Archived, project: Path, interval: int) -> subprocess.CompletedProcess:
    """Production's healthcheck of the schedule's service, in its environment."""
    prod = compose.load_override(project / "db/docker-compose.prod.yml")["services"]["backup-physical"]
    server = db.server
    env = {**server.env, "PGHOST": str(server.sockets), "PGPORT": str(server.port),
           "PATH": f"{db.bin}:{os.environ['PATH']}", "PHYSICAL_BACKUP_INTERVAL": str(interval)}
    return server._run(compose.healthcheck_command(prod), check=False, env=env)


def in_the_container(db: Archived) -> dict[str, str]:
    """The environment the image's scripts run in beside the server: its
    socket, and the server's binaries first on PATH."""
    server = db.server
    return {**server.env, "PGHOST": str(server.sockets), "PGPORT": str(server.port), "LANG": "C.UTF-8",
            "HOME": str(server.root), "PATH": f"{server.bindir}:{os.environ['PATH']}"}


def backed_up(db: Archived) -> None:
    db.sql("CREATE TABLE orders (id int PRIMARY KEY, note text)")
    db.sql("CREATE TABLE empty (id int)")
    write_rows(db, 1, 100)
    backup = db.script("backup-physical", "full")
    assert backup.returncode == 0, backup.stdout + backup.stderr


@pytest.mark.full
def test_a_drill_under_writes_passes_records_ok_and_leaves_the_live_database_and_archive_alone(drilled, pitr_project):
    db = drilled
    backed_up(db)
    write_rows(db, 101, 200)  # after the backup: the drill replays them from the archive
    # Writes go on during the drill, one row per transaction: the counts still match.
    stop = threading.Event()
    written = []

    def writer():
        n = 1000
        while not stop.is_set():
            db.sql("INSERT INTO orders VALUES (%s, 'during')", (n,))
            written.append(n)
            n += 1

    thread = threading.Thread(target=writer)
    before = archive_files(db)
    thread.start()
    try:
        result = drill(db)
    finally:
        stop.set()
        thread.join()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "restore-drill: passed: 2 tables, the same row counts" in result.stdout, result.stdout
    assert written, "no write ran during the drill"
    at, outcome, _, detail = status(db)
    assert outcome == "ok" and abs(int(at) - time.time()) < 60 and "restored to restore-drill-" in detail
    # the scratch copy is gone, and its new timeline never reached the archive
    assert not any((db.repo / "restore-drill").iterdir())
    after = archive_files(db)
    assert before <= after
    assert all(name.startswith("00000001") for name in after), sorted(after - before)
    # the live server runs on, with every row
    assert rows(db) == list(range(1, 201)) + written
    assert db.server.is_running()
    check = drill(db, "--check", PHYSICAL_BACKUP_INTERVAL="3600")
    assert check.returncode == 0 and "the last drill passed" in check.stdout, check.stderr
    assert healthcheck(db, pitr_project, 3600).returncode == 0
    # two intervals later, with no drill since, unhealthy
    time.sleep(2.1)
    stale = drill(db, "--check", PHYSICAL_BACKUP_INTERVAL="1")
    assert stale.returncode == 1 and "more than two intervals" in stale.stderr, stale.stderr
    assert healthcheck(db, pitr_project, 1).returncode != 0


@pytest.mark.full
def test_a_writer_holding_one_table_and_wanting_another_goes_on_and_the_drill_waits_its_turn(drilled):
    # The drill locks public.empty, then public.orders. A transaction that holds
    # orders and then writes empty would close a deadlock cycle: the detector
    # would cancel one of them, the application's transaction or the drill.
    db = drilled
    backed_up(db)
    holding, errors = threading.Event(), []

    def writer():
        try:
            with db.server.connect(**db.server.app) as conn, conn.transaction():
                conn.execute("INSERT INTO orders VALUES (500, 'held')")
                holding.set()
                time.sleep(2)  # the drill is at its locks meanwhile
                conn.execute("INSERT INTO empty VALUES (1)")
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            holding.set()

    thread = threading.Thread(target=writer)
    thread.start()
    holding.wait(10)
    try:
        result = drill(db)
    finally:
        thread.join()
    assert not errors, errors
    assert result.returncode == 0, result.stdout + result.stderr
    assert "restore-drill: passed: 2 tables, the same row counts" in result.stdout, result.stdout
    assert db.sql("SELECT count(*) FROM empty") == [(1,)] and 500 in rows(db)


FAILED_DRILLS = {
    # (what to break, the message expected)
    "corrupt backup": (corrupt_backup, "the restore failed"),
    "wrong passphrase": (lambda db: {"PGBACKREST_REPO1_CIPHER_PASS": "not-the-passphrase"},
                         "the repository cannot be used (pgbackrest check)"),
}


@pytest.mark.full
@pytest.mark.parametrize("breaks, message", FAILED_DRILLS.values(), ids=FAILED_DRILLS.keys())
def test_a_failed_drill_is_recorded_and_turns_the_healthcheck_unhealthy(drilled, pitr_project, breaks, message):
    db = drilled
    backed_up(db)
    first = drill(db)
    assert first.returncode == 0, first.stdout + first.stderr
    assert healthcheck(db, pitr_project, 3600).returncode == 0
    env = breaks(db)
    result = drill(db, **env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "restore-drill: FAILED: " + message in result.stderr, result.stderr
    at, outcome, _, detail = status(db)
    assert outcome == "failed" and message in detail
    check = drill(db, "--check", PHYSICAL_BACKUP_INTERVAL="3600")
    assert check.returncode == 1 and "the last drill, " in check.stderr and "failed: " in check.stderr
    assert healthcheck(db, pitr_project, 3600).returncode != 0
    assert not any((db.repo / "restore-drill").iterdir())
    assert rows(db) == list(range(1, 101))


@pytest.mark.full
def test_the_schedule_drills_after_each_backup(drilled):
    db = drilled
    backed_up(db)
    server = db.server
    env = {**in_the_container(db), "PHYSICAL_BACKUP_INTERVAL": "3600"}
    log = server.root / "schedule.log"
    user = {"user": "postgres", "group": "postgres", "extra_groups": []} if os.geteuid() == 0 else {}
    with log.open("w") as out:
        process = subprocess.Popen([str(db.bin / "backup-physical-every")], stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, env=env, cwd=server.root, **user)
    try:
        deadline = time.monotonic() + 180
        while "restore-drill: passed" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=30)
    text = log.read_text()
    assert re.search(r"backup-physical: (full|incr) backup of stanza.*\n(.*\n)*restore-drill: passed", text), text
    assert status(db)[1] == "ok"


@pytest.mark.full
def test_a_drill_stopped_midway_leaves_no_server_and_no_copy(drilled):
    db = drilled
    backed_up(db)
    server = db.server
    env = in_the_container(db)
    user = {"user": "postgres", "group": "postgres", "extra_groups": []} if os.geteuid() == 0 else {}
    process = subprocess.Popen([str(db.bin / "restore-drill")], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=env, cwd=server.root, **user)
    try:
        deadline = time.monotonic() + 120
        while not list((db.repo / "restore-drill").glob("*/data/postmaster.pid")):
            assert process.poll() is None and time.monotonic() < deadline, "the scratch server never started"
            time.sleep(0.05)
        process.terminate()
        assert process.wait(timeout=30) != 0
    finally:
        process.kill()
    assert not any((db.repo / "restore-drill").iterdir())
    # no scratch server either
    assert str(db.repo) not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert rows(db) == list(range(1, 101))
