"""db/: continuous WAL archiving and point-in-time recovery with pgBackRest.

The rendered files are checked statically in test_db_pitr_files.py. Here
(full tier) the real pgbackrest and a real PostgreSQL server started
from the rendered db/ (harness.postgres, harness.pitr), its postgresql.conf with the
rendered archive_command, and the rendered pgbackrest.conf with its
retention and encryption. Only the paths differ from the container's: the
harness points pgBackRest at a temporary repository, the test server's data
directory, socket and port through PGBACKREST_* variables, which pgBackRest
reads like the options of its file. The scripts run are db/bin/'s.
"""

from __future__ import annotations

import os
import pty
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness import compose
from harness.pitr import (Archived, corrupt_backup, rows, server_now, wait_until_promoted, write_rows,
                          writes_around_a_noted_time)
from harness.postgres import RUN_AS
from harness.processes import descendants, stop_promptly


# ===========================================================================
# Full tier: the real pgbackrest and a real server (pitr_project: conftest's)
# ===========================================================================
@pytest.fixture
def archived(pitr_project):
    db = Archived(pitr_project)
    yield db
    db.destroy()


def restore_and_start(db: Archived, target: str) -> subprocess.CompletedProcess:
    """What make db-pitr does: the checks with the server up, then stop, restore, start."""
    checked = db.script("pitr", "--check", target)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    db.server.stop()
    restored = db.script("pitr", target, "--yes")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    db.server.start()
    wait_until_promoted(db)
    return restored


@pytest.mark.full
def test_pitr_brings_back_exactly_the_rows_of_the_noted_time(archived):
    db = archived
    db.sql("CREATE TABLE orders (id int PRIMARY KEY, note text)")
    backup = db.script("backup-physical", "full")
    assert backup.returncode == 0, backup.stdout + backup.stderr
    noted = writes_around_a_noted_time(db)
    listed = db.script("list-backups-physical")
    assert listed.returncode == 0 and "full backup:" in listed.stdout, listed.stdout + listed.stderr
    assert "recoverable with pitr: from " in listed.stdout

    restored = restore_and_start(db, noted)
    assert "pitr: restored the backup before" in restored.stdout
    assert rows(db) == list(range(1, 101))
    # promoted: the database takes writes again, and keeps archiving them
    write_rows(db, 101, 110)
    check = db.pgbackrest("check")
    assert check.returncode == 0, check.stderr


@pytest.mark.full
def test_pitr_restores_onto_a_lost_data_directory_that_a_new_cluster_replaced(archived):
    """The data volume is lost and the next start initialises a new cluster in
    its place (another system id, its own init/): db/README.md's way back,
    `make db-pitr` with the database stopped, brings back the noted time."""
    db = archived
    db.sql("CREATE TABLE orders (id int PRIMARY KEY, note text)")
    backup = db.script("backup-physical", "full")
    assert backup.returncode == 0, backup.stdout + backup.stderr
    noted = writes_around_a_noted_time(db, drop=False)
    checked = db.script("pitr", "--check", noted)  # the newest WAL archived, as db-pitr does first
    assert checked.returncode == 0, checked.stdout + checked.stderr
    db.server.stop()
    shutil.rmtree(db.server.data)
    db.server.initialize()  # a new cluster: its archive_command and stanza-create are refused by the repository
    assert db.pgbackrest("check").returncode != 0, "the repository should refuse another cluster's WAL"

    listed = db.script("list-backups-physical", "--range")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    restored = db.script("pitr", noted, "--yes")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    db.server.start()
    wait_until_promoted(db)
    assert rows(db) == list(range(1, 101))
    check = db.pgbackrest("check")  # the old cluster again, archiving on a new timeline
    assert check.returncode == 0, check.stderr


@pytest.mark.full
def test_archiving_survives_a_killed_server_without_losing_a_segment(archived):
    db = archived
    db.sql("CREATE TABLE orders (id int PRIMARY KEY, note text)")
    assert db.script("backup-physical", "full").returncode == 0
    # Many segments at once: the archiver still has some to push when the postmaster dies.
    write_rows(db, 1, 1000)
    statements = ";".join(f"INSERT INTO orders SELECT g, repeat('x', 500) FROM generate_series({n}, {n + 999}) g;"
                          "SELECT pg_switch_wal()" for n in range(10_000, 30_000, 1000))
    db.server.query(statements, host=str(db.server.sockets), **db.server.admin)
    status = db.server.data / "pg_wal/archive_status"
    # A quiet machine's archiver may have caught up: more segments, each a
    # WAL message (no row) and a switch, until some wait for it.
    more = ";".join(["SELECT pg_logical_emit_message(false, 'backlog', 'x'); SELECT pg_switch_wal()"] * 20)
    for _ in range(10):
        if list(status.glob("*.ready")):
            break
        db.server.query(more, host=str(db.server.sockets), **db.server.admin)
    assert list(status.glob("*.ready")), "the archiver had no backlog: the kill would not be mid-archive"
    # As when the container is killed: the postmaster and every process under
    # it (backends, the archiver, the archive-push it runs) at once.
    postmaster = int((db.server.data / "postmaster.pid").read_text().split()[0])
    tree = descendants(postmaster) + [postmaster]
    for pid in tree:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:  # an archive-push that just ended
            pass
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{pid}").exists() for pid in tree):
        assert time.monotonic() < deadline, "the killed processes did not exit"
        time.sleep(0.1)
    db.server.start()  # crash recovery; the archiver picks up the .ready segments left
    noted = server_now(db)
    time.sleep(0.2)
    write_rows(db, 50_000, 50_010)
    check = db.pgbackrest("check")
    assert check.returncode == 0, check.stdout + check.stderr
    # every segment from the first archived to the newest is in the repository
    names = sorted({p.name[:24] for p in db.repo.glob("archive/*/*/*/*") if re.match(r"[0-9A-F]{24}-", p.name)})
    numbers = [int(name[8:16], 16) * 256 + int(name[16:24], 16) for name in names]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), names
    assert len(numbers) >= 20
    restore_and_start(db, noted)
    assert db.sql("SELECT count(*), max(id) FROM orders")[0] == (21_000, 29_999)


@pytest.fixture
def backed_up(archived):
    """A server with a backup and archived writes after it, stopped: the state a
    PITR starts from. Returns (db, a good target, the data directory's snapshot)."""
    db = archived
    db.sql("CREATE TABLE orders (id int PRIMARY KEY, note text)")
    assert db.script("backup-physical", "full").returncode == 0
    time.sleep(1.1)
    write_rows(db, 1, 100)
    target = server_now(db)
    write_rows(db, 101, 200)
    assert db.script("pitr", "--check", target).returncode == 0
    db.server.stop()
    return db, target, db.data_snapshot()


BAD_PITRS = {
    # (what to break, the target, the message expected)
    "wrong passphrase": (lambda db: {"PGBACKREST_REPO1_CIPHER_PASS": "not-the-passphrase"}, None,
                         "cannot be decrypted; is PGBACKREST_REPO1_CIPHER_PASS (db/.env) the passphrase"),
    "missing repository": (lambda db: {"PGBACKREST_REPO1_PATH": str(db.repo.with_name("gone"))}, None,
                           "cannot be used (status: error (missing stanza path))"),
    "corrupt backup": (corrupt_backup, None, "failed verification"),
    "before the oldest backup": (lambda db: {}, "2020-01-01 00:00:00", "is before the end of the oldest backup"),
    "after the archive": (lambda db: {}, "2099-01-01 00:00:00+00", "is not before the last transaction"),
}


@pytest.mark.full
@pytest.mark.parametrize("breaks, target, message", BAD_PITRS.values(), ids=BAD_PITRS.keys())
def test_a_bad_pitr_fails_clearly_and_changes_nothing(backed_up, breaks, target, message):
    db, good_target, before = backed_up
    env = breaks(db)
    result = db.script("pitr", target or good_target, "--yes", **env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert message in result.stderr and "nothing was changed" in result.stderr, result.stderr
    assert db.data_snapshot() == before
    db.server.start()
    assert rows(db) == list(range(1, 201)), "the server starts on its data as it was"


@pytest.mark.full
def test_pitr_refuses_while_the_server_runs(backed_up):
    db, target, before = backed_up
    db.server.start()
    result = db.script("pitr", target, "--yes")
    assert result.returncode == 1 and "the server is running" in result.stderr, result.stderr
    assert rows(db) == list(range(1, 201))


@pytest.mark.full
def test_pitr_asks_first_and_needs_yes_without_a_terminal(backed_up):
    db, target, before = backed_up
    result = db.script("pitr", target)
    assert result.returncode == 1 and "confirm with --yes" in result.stderr, result.stderr
    assert db.data_snapshot() == before
    # on a terminal, anything but "yes" changes nothing either
    for answer, changed in ((b"no\n", False), (b"yes\n", True)):
        primary, secondary = pty.openpty()
        try:
            os.write(primary, answer)
            result = db.script("pitr", target, stdin=secondary)
        finally:
            os.close(secondary)
            os.close(primary)
        assert "Type yes to confirm" in result.stdout + result.stderr
        if changed:
            assert result.returncode == 0, result.stdout + result.stderr
        else:
            assert result.returncode == 1 and "not confirmed; nothing was changed" in result.stderr, result.stderr
            assert db.data_snapshot() == before
    db.server.start()
    wait_until_promoted(db)
    assert rows(db) == list(range(1, 101))


@pytest.mark.full
def test_the_schedule_takes_a_full_then_incrementals_and_stops_on_sigterm(archived, pitr_project):
    db = archived
    db.sql("CREATE TABLE orders (id int PRIMARY KEY, note text)")
    log = db.server.root / "schedule.log"
    server = db.server
    # the image's PATH: the scripts, and the server's binaries (each backup is followed by a restore drill)
    path = f"{db.bin}:{server.bindir}:{os.environ['PATH']}"
    env = {**server.env, "PGHOST": str(server.sockets), "PGPORT": str(server.port), "PATH": path,
           "LANG": "C.UTF-8", "HOME": str(server.root), "PHYSICAL_BACKUP_INTERVAL": "1"}
    user = {"user": RUN_AS, "group": RUN_AS, "extra_groups": []} if os.geteuid() == 0 else {}
    with log.open("w") as out:
        process = subprocess.Popen([str(db.bin / "backup-physical-every")], stdin=subprocess.DEVNULL, stdout=out,
                                   stderr=subprocess.STDOUT, env=env, cwd=server.root, **user)
    try:
        deadline = time.monotonic() + 180
        while log.read_text().count("backup of stanza") < 3:
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
    finally:
        elapsed = stop_promptly(process, timeout=30)
    assert elapsed < 10, f"SIGTERM took {elapsed:.1f}s"
    text = log.read_text()
    assert "backup-physical-every: stopping" in text
    assert "restore-drill: passed" in text, text
    kinds = re.findall(r"backup-physical: (full|incr) backup of stanza", text)
    assert kinds[:3] == ["full", "incr", "incr"], text
    info = db.pgbackrest("info")
    assert info.stdout.count("full backup:") == 1 and info.stdout.count("incr backup:") >= 2, info.stdout
    # production's healthcheck: healthy now (a backup, and a drill that passed), unhealthy once the
    # newest backup is two intervals old
    prod = compose.load_override(pitr_project / "db/docker-compose.prod.yml")["services"]["backup-physical"]
    check = compose.healthcheck_command(prod)
    assert server._run(check, check=False, env={**env, "PHYSICAL_BACKUP_INTERVAL": "3600"}).returncode == 0
    time.sleep(2.1)
    assert server._run(check, check=False, env={**env, "PHYSICAL_BACKUP_INTERVAL": "1"}).returncode != 0


@pytest.mark.full
def test_the_passphrase_never_reaches_a_command_line(pitr_project):
    """Recorded with strace: the first start (init/ creates the stanza), a
    backup, the listing and a PITR's checks; pgBackRest gets the passphrase
    from its environment only."""
    db = Archived(pitr_project, trace=True)
    try:
        db.sql("CREATE TABLE orders (id int PRIMARY KEY, note text)")
        assert db.script("backup-physical", "full", traced=True).returncode == 0
        time.sleep(1.1)
        write_rows(db, 1, 10)
        target = server_now(db)
        write_rows(db, 11, 20)
        assert db.script("list-backups-physical", traced=True).returncode == 0
        assert db.script("pitr", "--check", target, traced=True).returncode == 0
        lines = db.server.command_lines()
        assert any(line[-1:] == ["stanza-create"] for line in lines), "init/ ran pgbackrest stanza-create"
        assert any("verify" in line for line in lines) and any("backup" in line for line in lines)
        passphrase = db.server.env["PGBACKREST_REPO1_CIPHER_PASS"]
        assert not [line for line in lines if any(passphrase in arg for arg in line)]
    finally:
        db.destroy()


@pytest.mark.full
def test_a_first_start_without_the_passphrase_still_serves_and_backups_say_why(pitr_project, tmp_path):
    """init/ runs once: a db/.env without the passphrase (older than it) must
    not leave a new volume unusable; archiving and backups fail, saying why."""
    project = tmp_path / "project"
    shutil.copytree(pitr_project, project, symlinks=True)
    env_file = project / "db/.env"
    env_file.write_text("".join(line for line in env_file.read_text().splitlines(keepends=True)
                                if not line.startswith("PGBACKREST_REPO1_CIPHER_PASS=")))
    db = Archived(project)
    try:
        assert "PGBACKREST_REPO1_CIPHER_PASS" not in db.server.env
        # init/ went on to its end: the application role logs in (what the healthcheck checks)
        assert db.sql("SELECT 1") == [(1,)]
        init = db.server._run([str(db.server.initdb_d / "40-backup-stanza.sh")], check=False,
                              env=db.server._init_env())
        assert init.returncode == 0
        assert "WARNING: PGBACKREST_REPO1_CIPHER_PASS is not set in db/.env" in init.stderr, init.stderr
        result = db.script("backup-physical")
        assert result.returncode == 1, result.stdout + result.stderr
        assert "PGBACKREST_REPO1_CIPHER_PASS is not set (db/.env)" in result.stderr
        assert not list(db.repo.rglob("backup.info*")), "nothing was written to the repository"
    finally:
        db.destroy()
