"""Continuous archiving and point-in-time recovery on the real engine, through
the project's own commands: the stanza made at first start, `make
db-backup-physical`, `make db-pitr` to a noted moment (exactly the rows of that
moment, the data as it was kept in a volume), a target outside the archive
refused with nothing changed, archiving that survives `docker kill`, a lost
data volume brought back after a new database replaced it, and
`make db-drill` beside the live database (a drill made to fail is recorded).

On the stand-in image pgBackRest is Debian trixie's (scripts/standins/README.md):
giga's PostgreSQL 16 is one it knows."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from harness import engine
from harness.docker_stack import Names, run_make
from harness.render import render_example

pytestmark = [pytest.mark.full, pytest.mark.docker]


@pytest.fixture(scope="module")
def project(docker_engine, tmp_path_factory) -> Path:
    path = render_example("giga", tmp_path_factory.mktemp("docker-pitr") / "giga")
    yield path
    engine.compose_down(path / "db")
    kept = engine.docker("volume", "ls", "--quiet", "--filter", "name=_before_pitr_").stdout.split()
    pgbackrest = engine.docker("volume", "ls", "--quiet", "--filter", "name=_db_pgbackrest_").stdout.split()
    if kept or pgbackrest:
        engine.docker("volume", "rm", "--force", *kept, *pgbackrest, check=False)


@pytest.fixture(scope="module")
def names(project) -> Names:
    return Names(project)


def as_postgres(names: Names, *args: str, check: bool = True):
    return engine.docker("exec", "-u", "postgres", names.db, *args, check=check)


def test_first_start_creates_the_stanza_and_archives(project, names):
    run_make(project, "db-up")
    engine.wait_healthy(names.db, timeout=240)
    log = engine.logs(names.db, tail=500)
    assert "/docker-entrypoint-initdb.d/40-backup-stanza.sh" in log and "40-backup-stanza.sh: WARNING" not in log, log
    # the repository is the postgres user's, in its own volume
    assert as_postgres(names, "stat", "-c", "%U", "/var/lib/pgbackrest").stdout.strip() == "postgres"
    check = as_postgres(names, "pgbackrest", "check", check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_pitr_to_a_noted_moment_brings_back_exactly_its_rows(project, names):
    names.psql("CREATE TABLE ledger (id int PRIMARY KEY); INSERT INTO ledger SELECT generate_series(1, 100)")
    run_make(project, "db-backup-physical", "TYPE=full")
    # pgBackRest gives the backup's end to the second: the earliest target is
    # the next whole second, so the noted moment comes after it
    time.sleep(1.1)
    names.psql("INSERT INTO ledger SELECT generate_series(101, 150)")
    noted = names.psql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
    names.psql("INSERT INTO ledger SELECT generate_series(151, 400)")
    names.psql("DROP TABLE ledger")
    listing = run_make(project, "db-backups-physical").stdout
    assert "full" in listing, listing

    run_make(project, "db-pitr", f"TARGET={noted}", "YES=1", timeout=900)
    engine.wait_healthy(names.db, timeout=240)
    assert names.psql("SELECT count(*), min(id), max(id) FROM ledger") == "150|1|150"
    # open for writes again, on a new timeline
    names.psql("INSERT INTO ledger VALUES (151)")
    assert names.psql("SELECT pg_is_in_recovery()") == "f"
    kept = engine.docker("volume", "ls", "--quiet", "--filter", "name=giga_db_data_16_before_pitr_").stdout.split()
    assert len(kept) == 1, kept


def test_a_target_outside_the_archive_is_refused_and_changes_nothing(project, names):
    before = names.psql("SELECT count(*) FROM ledger")
    started = engine.inspect(names.db)["State"]["StartedAt"]
    result = run_make(project, "db-pitr", "TARGET=2001-01-01 00:00:00", "YES=1", ok=False)
    assert result.returncode != 0 and "nothing was changed" in result.stderr, result.stderr
    assert engine.inspect(names.db)["State"]["StartedAt"] == started, "the database was not stopped"
    assert names.psql("SELECT count(*) FROM ledger") == before


def test_archiving_resumes_after_the_database_is_killed(project, names):
    names.psql("CREATE TABLE churn AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 200000) g")
    engine.docker("kill", names.db)
    run_make(project, "db-up")
    engine.wait_healthy(names.db, timeout=240)
    check = as_postgres(names, "pgbackrest", "check", check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert names.psql("SELECT count(*) FROM churn") == "200000"


def test_make_db_drill_restores_beside_the_live_database_and_a_failed_drill_is_recorded(project, names):
    run_make(project, "db-backup-physical", "TYPE=full")
    drilled = run_make(project, "db-drill", timeout=600)
    assert "restore-drill: passed: " in drilled.stdout, drilled.stdout + drilled.stderr
    check = as_postgres(names, "restore-drill", "--check", check=False)
    assert check.returncode == 0 and "the last drill passed" in check.stdout, check.stderr
    # the same drill with a passphrase that does not open the repository
    failed = engine.docker("exec", "-u", "postgres", "-e", "PGBACKREST_REPO1_CIPHER_PASS=not-the-passphrase",
                           names.db, "restore-drill", check=False)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "restore-drill: FAILED: the repository cannot be used" in failed.stderr, failed.stderr
    check = as_postgres(names, "restore-drill", "--check", check=False)
    assert check.returncode == 1 and "failed: " in check.stderr, check.stdout + check.stderr
    # the live database served throughout, and no scratch copy is left
    assert names.psql("SELECT count(*) FROM churn") == "200000"
    assert as_postgres(names, "ls", "-A", "/var/lib/pgbackrest/restore-drill").stdout.strip() == ""


def test_a_lost_data_volume_comes_back_through_make_db_pitr(project, names):
    """db/README.md's way back: the volume is gone, `make db-up` starts a new,
    empty database in its place, and with it stopped `make db-pitr` restores
    the noted moment from the repository's volume."""
    noted = names.psql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")
    names.psql("CREATE TABLE after_the_note (id int)")
    as_postgres(names, "pgbackrest", "check")  # the newest WAL archived
    engine.docker("rm", "--force", names.db)
    engine.docker("volume", "rm", "giga_db_data_16")
    run_make(project, "db-up")
    engine.wait_healthy(names.db, timeout=240)
    assert names.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'churn'") == "0", "a new, empty database"
    engine.docker("stop", names.db)

    run_make(project, "db-pitr", f"TARGET={noted}", "YES=1", timeout=900)
    engine.wait_healthy(names.db, timeout=240)
    assert names.psql("SELECT count(*) FROM churn") == "200000"
    assert names.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'after_the_note'") == "0"
    check = as_postgres(names, "pgbackrest", "check", check=False)
    assert check.returncode == 0, check.stdout + check.stderr
