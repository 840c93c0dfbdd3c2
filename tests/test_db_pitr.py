"""db/: continuous WAL archiving and point-in-time recovery with pgBackRest.

Quick tier: the rendered files, statically (the image installs pgBackRest and
its configuration, archiving is on, the repository has a volume of its own,
the passphrase is a generated secret in db/.env only, make targets).

Full tier (`full`): the real pgbackrest and a real PostgreSQL server started
from the rendered db/ (harness.postgres), its postgresql.conf with the
rendered archive_command, and the rendered pgbackrest.conf with its
retention and encryption. Only the paths differ from the container's: the
harness points pgBackRest at a temporary repository, the test server's data
directory, socket and port through PGBACKREST_* variables, which pgBackRest
reads like the options of its file. The scripts run are db/bin/'s.
"""

from __future__ import annotations

import glob
import hashlib
import os
import pty
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from harness import compose, dotenv, make
from harness.answers import POSTGRES_VERSIONS, recorded
from harness.dockerfile import dockerfile_stages
from harness.postgres import RUN_AS, PostgresServer, conf_settings

PHYSICAL_SCRIPTS = ("backup-physical", "list-backups-physical", "pitr")


def pgbackrest_conf(project: Path) -> dict[str, dict[str, str]]:
    """db/pgbackrest.conf's sections and options."""
    sections: dict[str, dict[str, str]] = {}
    current = None
    for line in (project / "db/pgbackrest.conf").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current[key] = value
    return sections


# ===========================================================================
# Quick tier
# ===========================================================================
def test_the_image_installs_pgbackrest_and_its_configuration(versioned_project):
    db_dir = versioned_project / "db"
    instructions = dockerfile_stages(db_dir / "Dockerfile")[""].instructions
    runs = [arguments for keyword, arguments in instructions if keyword == "RUN"]
    assert any(re.search(r"apt-get install -y --no-install-recommends pgbackrest\b", run) and
               "rm -rf /var/lib/apt/lists/*" in run for run in runs), runs
    assert ("COPY", "pgbackrest.conf /etc/pgbackrest/pgbackrest.conf") in instructions
    assert (db_dir / "pgbackrest.conf").is_file()
    for name in PHYSICAL_SCRIPTS + ("backup-physical-every",):
        assert os.access(db_dir / "bin" / name, os.X_OK), name


def test_pgbackrest_conf_encrypts_keeps_two_fulls_and_names_the_data_directory(versioned_project):
    a = recorded(versioned_project)
    conf = pgbackrest_conf(versioned_project)
    assert set(conf) == {"global", a["project_slug"]}
    assert conf["global"]["repo1-path"] == "/var/lib/pgbackrest"
    assert conf["global"]["repo1-cipher-type"] == "aes-256-cbc"
    assert (conf["global"]["repo1-retention-full-type"], conf["global"]["repo1-retention-full"]) == ("count", "2")
    assert not any(key.startswith("repo2") for key in conf["global"]), "repository 2 exists only if db/.env sets it"
    assert not any("cipher-pass" in key for section in conf.values() for key in section), "no secret in the file"
    stanza = conf[a["project_slug"]]
    pgdata = f"/var/lib/postgresql/{a['postgres_version']}/docker" if a["postgres_version"] >= 18 \
        else "/var/lib/postgresql/data"
    assert stanza["pg1-path"] == pgdata
    assert stanza["pg1-port"] == str(a["db_port"]) and stanza["pg1-user"] == a["db_admin_user"]
    # the data directory is where the data volume is mounted
    _, service = compose.db_service(versioned_project)
    mount = next(v.split(":", 1)[1] for v in service["volumes"] if v.startswith("db_data:"))
    assert pgdata == mount or pgdata.startswith(mount + "/")


def test_postgresql_conf_archives_through_pgbackrest_with_durability_on(versioned_project):
    a = recorded(versioned_project)
    settings = conf_settings(versioned_project / "db/postgresql.conf")
    assert settings["wal_level"] == "replica" and settings["archive_mode"] == "on"
    assert settings["archive_command"] == f"pgbackrest --stanza={a['project_slug']} archive-push %p"
    assert settings["archive_timeout"] == "60s"
    assert {settings[key] for key in ("fsync", "full_page_writes", "synchronous_commit")} == {"on"}
    _, service = compose.db_service(versioned_project)
    assert service["environment"]["PGBACKREST_STANZA"] == a["project_slug"]


def test_the_repository_has_a_volume_of_its_own(versioned_project):
    a = recorded(versioned_project)
    _, service = compose.db_service(versioned_project)
    volumes = compose.load(versioned_project / "db/docker-compose.yml")["volumes"]
    assert "db_pgbackrest:/var/lib/pgbackrest" in service["volumes"]
    assert volumes["db_pgbackrest"]["name"] == f"{a['project_slug']}_db_pgbackrest_{a['postgres_version']}"
    assert volumes["db_pgbackrest"]["name"] != volumes["db_data"]["name"]
    data_mount = next(v.split(":", 1)[1] for v in service["volumes"] if v.startswith("db_data:"))
    assert not "/var/lib/pgbackrest".startswith(data_mount + "/"), "the repository must not live in the data volume"


def test_the_passphrase_is_generated_into_db_env_only(render, default_project):
    passphrase = dotenv.load(default_project / "db/.env")["PGBACKREST_REPO1_CIPHER_PASS"]
    again = dotenv.load(render({"project_name": "Giga"}) / "db/.env")["PGBACKREST_REPO1_CIPHER_PASS"]
    assert re.fullmatch(r"[0-9a-f]{64}", passphrase) and passphrase != again
    assert dotenv.load(default_project / "db/.env.example")["PGBACKREST_REPO1_CIPHER_PASS"] == "change-me"
    assert "db_backup_passphrase" not in (default_project / ".copier-answers.yml").read_text()
    for path in default_project.rglob("*"):
        if path.is_file() and path.name != ".env":
            assert passphrase not in path.read_text(errors="replace"), path
    # the container gets it from env_file, not from the compose file's text or a command line
    _, service = compose.db_service(default_project)
    assert service["env_file"] == ".env" and "PGBACKREST_REPO1_CIPHER_PASS" not in service["environment"]
    assert "CIPHER_PASS" not in (default_project / "db/docker-compose.yml").read_text()
    assert "cipher-pass" not in (default_project / "db/postgresql.conf").read_text()


def test_the_object_store_is_documented_commented_out_and_encrypted(default_project):
    for name in (".env", ".env.example"):
        text = (default_project / "db" / name).read_text()
        assert not any(key.startswith("PGBACKREST_REPO2") for key in dotenv.load(default_project / "db" / name))
        for key in ("TYPE=s3", "S3_BUCKET=", "S3_ENDPOINT=", "S3_KEY=", "S3_KEY_SECRET=", "CIPHER_TYPE=aes-256-cbc",
                    "CIPHER_PASS="):
            assert f"\n#PGBACKREST_REPO2_{key}" in text, (name, key)


def test_make_targets_run_the_scripts_and_are_documented(default_project):
    a = recorded(default_project)
    assert {"db-backup-physical", "db-backups-physical", "db-pitr"} <= set(make.targets(default_project))
    container = f"{a['project_slug']}_db_dev"
    assert make.commands(default_project, "db-backup-physical") == [
        ["docker", "exec", "-u", "postgres", container, "backup-physical", "incr"]]
    assert make.commands(default_project, "db-backup-physical", TYPE="full") == [
        ["docker", "exec", "-u", "postgres", container, "backup-physical", "full"]]
    assert make.commands(default_project, "db-backups-physical") == [
        ["docker", "exec", "-u", "postgres", container, "list-backups-physical"]]
    assert make.commands(default_project, "db-pitr", TARGET="2026-01-01 10:00:00")[-1] == [
        "scripts/db-pitr", "2026-01-01 10:00:00"]
    assert make.commands(default_project, "db-pitr", TARGET="2026-01-01 10:00:00", YES="1")[-1] == [
        "scripts/db-pitr", "2026-01-01 10:00:00", "--yes"]
    refused = make.make(default_project, "db-pitr")
    assert refused.returncode == 2 and "TARGET is required" in refused.stderr
    readme = (default_project / "db/README.md").read_text()
    section = readme.split("## Point-in-time recovery", 1)[1].split("\n## ", 1)[0]
    for documented in ("make db-backup-physical", "make db-backups-physical", "make db-pitr TARGET=",
                       "YES=1", "PGBACKREST_REPO1_CIPHER_PASS", "archive_timeout"):
        assert documented in section, documented
    assert "{{" not in section


def test_db_pitr_refuses_a_bad_target_before_touching_docker(default_project):
    for args, message in ((["not a time"], "is not a timestamp"), ([], "usage: scripts/db-pitr TARGET"),
                          (["2026-01-01 10:00", "--force"], "usage: scripts/db-pitr TARGET")):
        result = subprocess.run([str(default_project / "scripts/db-pitr"), *args], capture_output=True, text=True,
                                stdin=subprocess.DEVNULL, timeout=30, cwd=default_project,
                                env={**os.environ, "PATH": "/usr/bin:/bin", "DOCKER_HOST": "unix:///nonexistent"})
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_pitr_refuses_a_target_that_is_not_a_timestamp_before_reading_anything(default_project, tmp_path):
    for target in ("yesterday", "1 hour ago", "2026-02-30 10:00:00", "2026-01-01", "now", "2026-01-01 10:00:00 +1 day"):
        result = subprocess.run([str(default_project / "db/bin/pitr"), target, "--yes"], capture_output=True,
                                text=True, timeout=30, stdin=subprocess.DEVNULL,
                                env={"PATH": os.environ["PATH"], "PGBACKREST_STANZA": "giga",
                                     "PGBACKREST_CONFIG": str(tmp_path / "none.conf")})
        assert result.returncode == 1, (target, result.stderr)
        assert f"'{target}' is not a timestamp" in result.stderr and "nothing was changed" in result.stderr


def test_the_schedule_runs_beside_the_server_from_its_image_and_production_enables_it(versioned_project):
    a = recorded(versioned_project)
    db_name, db = compose.db_service(versioned_project)
    _, service = compose.profile_services(versioned_project)["backup-physical"]
    assert service["image"] == db["image"] and service["pull_policy"] == "never" and "build" not in service
    assert service["command"] == ["backup-physical-every"] and service["user"] == "postgres"
    data = next(v for v in db["volumes"] if v.startswith("db_data:"))
    # the data read-only, the same repository, the server's socket
    assert service["volumes"] == [f"{data}:ro", "db_pgbackrest:/var/lib/pgbackrest", "db_socket:/var/run/postgresql"]
    assert "db_socket:/var/run/postgresql" in db["volumes"]
    assert compose.load(versioned_project / "db/docker-compose.yml")["volumes"]["db_socket"]["driver_opts"]["type"] == "tmpfs"
    # restore-drill logs in as the superuser, over the socket
    assert service["environment"] == {"PGBACKREST_STANZA": a["project_slug"], "POSTGRES_USER": a["db_admin_user"],
                                      "POSTGRES_DB": a["db_name"], "PGPORT": str(a["db_port"])} \
        and service["env_file"] == ".env"
    assert "cap_add" not in service and service["tmpfs"] == ["/tmp"]
    for name in (".env", ".env.example"):
        assert dotenv.load(versioned_project / "db" / name)["PHYSICAL_BACKUP_INTERVAL"] == "86400", name
    # production: the profile is on, with a healthcheck on the newest backup's age
    make_text = (versioned_project / "Makefile").read_text()
    assert re.search(r"^PROD_DB_COMPOSE := .*--profile backup-physical\b", make_text, re.M)
    prod = compose.load_override(versioned_project / "db/docker-compose.prod.yml")["services"]["backup-physical"]
    assert "pgbackrest info" in prod["healthcheck"]["test"][1]


@pytest.mark.parametrize("interval", ["0", "-5", "1h", "ten"])
def test_backup_physical_every_refuses_a_bad_interval(default_project, interval):
    result = subprocess.run([str(default_project / "db/bin/backup-physical-every")], capture_output=True, text=True,
                            timeout=10, env={"PATH": os.environ["PATH"], "PHYSICAL_BACKUP_INTERVAL": interval})
    assert result.returncode == 2, result
    assert f"PHYSICAL_BACKUP_INTERVAL must be a positive whole number of seconds, not '{interval}'" in result.stderr


def test_backup_physical_refuses_a_bad_type_and_root(default_project):
    result = subprocess.run([str(default_project / "db/bin/backup-physical"), "weekly"], capture_output=True,
                            text=True, timeout=10, env={"PATH": os.environ["PATH"]})
    assert result.returncode == 2 and "the type must be full, incr or diff, not 'weekly'" in result.stderr
    if os.geteuid() == 0:
        result = subprocess.run([str(default_project / "db/bin/backup-physical")], capture_output=True, text=True,
                                timeout=10, env={"PATH": os.environ["PATH"]})
        assert result.returncode == 2 and "run it as the postgres user" in result.stderr


# ===========================================================================
# Full tier: the real pgbackrest and a real server
# ===========================================================================
def waldump_major() -> int:
    """The major of the pg_waldump on this machine (Debian's server package),
    which pitr reads the archive with; pgBackRest must support it too."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_waldump"))
    assert found, "pg_waldump not found: scripts/bootstrap installs Debian's postgresql"
    return int(Path(found[-1]).parts[-3])


class Archived:
    """A server of the rendered db/, archiving through the rendered
    pgbackrest.conf into a repository of its own."""

    def __init__(self, project: Path, trace: bool = False):
        self.server = server = PostgresServer(project / "db")
        if trace:
            server.trace_exec()
        self.repo = server.repo
        # the image's /usr/local/bin: the postgres user cannot read the rendered project
        self.bin = server.root / "bin"
        shutil.copytree(project / "db/bin", self.bin)
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", f"{RUN_AS}:{RUN_AS}", str(self.bin)], check=True)
        server.initialize()
        server.start()

    def script(self, name: str, *args: str, stdin=subprocess.DEVNULL, traced: bool = False,
               **env: str) -> subprocess.CompletedProcess:
        """db/bin/<name> as `docker exec -u postgres <db> name ...` runs it."""
        server = self.server
        path = f"{Path(glob.glob('/usr/lib/postgresql/*/bin/pg_waldump')[-1]).parent}:{os.environ['PATH']}"
        return server._run([str(self.bin / name), *args], check=False, stdin=stdin, timeout=300, errors="replace",
                           traced=traced,
                           env={**server.env, "PGHOST": str(server.sockets), "PGPORT": str(server.port),
                                "PATH": path, **env})

    def pgbackrest(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return self.server._run(["pgbackrest", *args], check=False, errors="replace", env={**self.server.env, **env})

    def sql(self, statement: str, params=None) -> list[tuple]:
        return self.server.query(statement, params=params, **self.server.app)

    def data_snapshot(self) -> dict[str, tuple[int, str]]:
        """Every file of the data directory: size and content hash."""
        snapshot = {}
        for path in sorted(self.server.data.rglob("*")):
            if path.is_file():
                snapshot[path.relative_to(self.server.data).as_posix()] = (
                    path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
        return snapshot

    def destroy(self) -> None:
        self.server.destroy()


@pytest.fixture(scope="module")
def pitr_project(render) -> Path:
    major = waldump_major()
    assert major in POSTGRES_VERSIONS, f"pg_waldump {major} matches no offered postgres_version"
    return render({"postgres_version": major})


@pytest.fixture
def archived(pitr_project):
    db = Archived(pitr_project)
    yield db
    db.destroy()


def server_now(db: Archived) -> str:
    return db.sql("SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')")[0][0]


def rows(db: Archived, table: str = "orders") -> list[int]:
    return [row[0] for row in db.sql(f"SELECT id FROM {table} ORDER BY id")]


def write_rows(db: Archived, first: int, last: int) -> None:
    db.sql("INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(%s::int, %s::int) g", (first, last))


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


def wait_until_promoted(db: Archived) -> None:
    """The server answers reads while it replays the WAL; done once it takes writes."""
    deadline = time.monotonic() + 120
    while db.server.query("SELECT pg_is_in_recovery()", host=str(db.server.sockets), **db.server.admin)[0][0]:
        assert time.monotonic() < deadline, "the server never finished recovery:\n" + db.server.server_log()[-3000:]
        time.sleep(0.2)


@pytest.mark.full
def test_pitr_brings_back_exactly_the_rows_of_the_noted_time(archived):
    db = archived
    db.sql("CREATE TABLE orders (id int PRIMARY KEY, note text)")
    backup = db.script("backup-physical", "full")
    assert backup.returncode == 0, backup.stdout + backup.stderr
    time.sleep(1.1)  # backups end on a whole second; recovery can stop only after
    write_rows(db, 1, 100)
    noted = server_now(db)
    time.sleep(0.2)
    write_rows(db, 101, 150)
    db.sql("DROP TABLE orders")
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
    assert list(status.glob("*.ready")), "the archiver had no backlog: the kill would not be mid-archive"
    # As when the container is killed: the postmaster and every process under
    # it (backends, the archiver, the archive-push it runs) at once.
    postmaster = int((db.server.data / "postmaster.pid").read_text().split()[0])
    tree = _descendants(postmaster) + [postmaster]
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


def _descendants(pid: int) -> list[int]:
    """Every process below `pid`."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


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


def _corrupt_backup(db: Archived) -> dict[str, str]:
    """Flips bytes in the middle of the largest file of the backup set."""
    files = sorted((p for p in db.repo.glob("backup/*/*/pg_data/**/*") if p.is_file()), key=lambda p: p.stat().st_size)
    victim = files[-1]
    data = bytearray(victim.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = bytes(b ^ 0xFF for b in data[middle:middle + 64])
    victim.write_bytes(bytes(data))
    return {}


BAD_PITRS = {
    # (what to break, the target, the message expected)
    "wrong passphrase": (lambda db: {"PGBACKREST_REPO1_CIPHER_PASS": "not-the-passphrase"}, None,
                         "cannot be decrypted; is PGBACKREST_REPO1_CIPHER_PASS (db/.env) the passphrase"),
    "missing repository": (lambda db: {"PGBACKREST_REPO1_PATH": str(db.repo.with_name("gone"))}, None,
                           "cannot be used (status: error (missing stanza path))"),
    "corrupt backup": (_corrupt_backup, None, "failed verification"),
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
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        try:
            assert process.wait(timeout=30) == 0
        finally:
            process.kill()
    assert time.monotonic() - started < 10
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
