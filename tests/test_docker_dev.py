"""The development stack on a real Docker engine, through the project's own
commands, for each example (PostgreSQL 16 and 18).

scripts/docker-engine's engine (Debian's 26.1) builds the rendered Dockerfiles
unchanged on local stand-ins of the base images (docs/testing.md lists how
they differ). The tests run in order on one stack per example, as a team's
first hour does: `make db-up`, `make up`, `make migrate`, `make verify`, the
documented verification commands (docs/operations.md), then the architecture seen on the live
containers, a browser, backups and faults.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from harness import browser, engine, traffic
from harness.docker_stack import DATA, STATE, Names, newest_dump, own_names, run_make, status, teardown
from harness.render import EXAMPLES, render_example

pytestmark = [pytest.mark.full, pytest.mark.docker]


@pytest.fixture(scope="module", params=[p.stem for p in EXAMPLES])
def project(request, docker_engine, tmp_path_factory) -> Path:
    """The example rendered through the CLI; everything it started removed afterwards."""
    path = render_example(request.param, tmp_path_factory.mktemp("docker") / request.param)
    yield path
    teardown(path)


@pytest.fixture(scope="module")
def names(project) -> Names:
    return Names(project)


# ---------------------------------------------------------------------------
# The first hour, in the README's order
# ---------------------------------------------------------------------------
def test_make_db_up_initialises_through_the_official_entrypoint_and_turns_healthy(project, names):
    run_make(project, "db-up")
    engine.wait_healthy(names.db, timeout=240)
    log = engine.logs(names.db, tail=500)
    for script in sorted((project / "db/init").iterdir()):
        assert f"/docker-entrypoint-initdb.d/{script.name}" in log, log
    assert "PostgreSQL init process complete; ready for start up." in log
    # the server runs the rendered configuration, not the image's default
    conf = dict(re.findall(r"^(\w+) = '?([^'\s#]+)", (project / "db/postgresql.conf").read_text(), re.M))
    for setting in ("shared_buffers", "max_connections", "password_encryption"):
        assert names.psql(f"SHOW {setting}") == conf[setting], setting


def test_make_up_starts_backend_frontend_and_mailpit(project, names):
    run_make(project, "up")
    for container in (names.frontend, names.mailpit):
        engine.wait_healthy(container, timeout=300)
    assert status(f"{names.front_url}/healthz") == 200
    # the backend serves, and says the database is not ready for it: no tables yet
    engine.wait_for(lambda: status(f"{names.api_url}/api/health/") == 503, 120, "the backend answering",
                    diagnose=lambda: engine.logs(names.backend))


def test_make_migrate_creates_the_tables_in_the_isolated_database(project, names):
    run_make(project, "migrate")
    engine.wait_healthy(names.backend, timeout=120)
    # the worker waited for its queue's table, and now takes tasks
    engine.wait_healthy(names.worker, timeout=180)
    assert "migration(s) unapplied" in engine.logs(names.worker, tail=2000)
    tables = names.psql(r"SELECT tablename FROM pg_tables WHERE schemaname = 'public'").split()
    assert {"personas_usuario", "django_migrations", "django_session"} <= set(tables)
    # and nowhere else: the backend's container has no database files
    found = engine.docker("exec", names.backend, "sh", "-c",
                          "find / \\( -path /proc -o -path /sys \\) -prune -o "
                          "\\( -name '*.sqlite3' -o -name PG_VERSION -o -name manage.py \\) -print 2>/dev/null",
                          check=False)
    assert found.stdout.split() == ["/app/manage.py"], "the search reached the code, and found nothing else"


def test_make_verify_passes_every_item_with_a_real_database_restart(project, names):
    started = engine.inspect(names.backend)["State"]["StartedAt"]
    db_started = engine.inspect(names.db)["State"]["StartedAt"]
    result = run_make(project, "verify", timeout=600)
    marks = [line for line in result.stdout.splitlines() if line[:1] in ("✅", "❌")]
    assert len(marks) == 9 and all(line.startswith("✅") for line in marks), result.stdout
    assert "Every checklist item passed." in result.stdout
    assert engine.inspect(names.db)["State"]["StartedAt"] != db_started, "the database was restarted"
    assert engine.inspect(names.backend)["State"]["StartedAt"] == started, "the backend was not"


def docs_block(project: Path, document: str, heading: str) -> str:
    text = (project / document).read_text()
    section = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```bash\n(.*?)```", section, re.S).group(1)


def test_the_documented_verification_commands_run_literally(project, names):
    """docs/operations.md's "Verify the architecture" block, run by bash as written."""
    block = docs_block(project, "docs/operations.md", "Verify the architecture")
    result = subprocess.run(["bash", "-c", block], capture_output=True, text=True, timeout=300,
                            stdin=subprocess.DEVNULL, cwd=project)
    out = result.stdout + result.stderr
    for container in (names.db, names.backend, names.frontend):
        assert container in result.stdout, out
    assert "/var/lib/postgresql/': No such file or directory" in result.stderr, "ls fails in the backend"
    assert re.search(r"Usuario creado: \d+", result.stdout), out
    assert re.search(r"\| test +\| test@test\.com", result.stdout), "psql in the DB container reads the user back"
    assert "personas_usuario" in result.stdout, r"\dt lists Django's tables"
    assert "System check identified no issues" in result.stdout, out
    assert re.search(r"BD funcional: \d+ usuarios en sistema", result.stdout), out
    assert "❌" not in result.stdout, out


# ---------------------------------------------------------------------------
# The architecture, on the live containers
# ---------------------------------------------------------------------------
CONNECT = ("const s = require('net').connect({host: process.argv[1], port: +process.argv[2], timeout: 3000});"
           "s.on('connect', () => { console.log('connected'); process.exit(0); });"
           "s.on('timeout', () => { console.log('timeout'); process.exit(1); });"
           "s.on('error', (e) => { console.log(e.code); process.exit(1); });")


def test_the_frontend_has_no_path_to_the_database_by_name_or_address(names):
    a = names.answers
    db_address = engine.inspect(names.db)["NetworkSettings"]["Networks"][names.db_network]["IPAddress"]
    gateway = engine.inspect(names.frontend)["NetworkSettings"]["Networks"][names.app_network]["Gateway"]
    # the backend reaches it both ways: the probes work
    for host in (a["db_service"], db_address):
        probe = engine.docker("exec", names.backend, "python", "-c",
                              f"import socket; socket.create_connection(({host!r}, {a['db_port']}), 3)", check=False)
        assert probe.returncode == 0, probe.stderr
    targets = [(a["db_service"], a["db_port"]), (db_address, a["db_port"])]
    if a["db_host_port"]:
        targets.append((gateway, a["db_host_port"]))  # the port published on the host's loopback
    for host, port in targets:
        probe = engine.docker("exec", names.frontend, "node", "-e", CONNECT, host, str(port), check=False)
        assert probe.returncode == 1 and probe.stdout.strip() in ("ENOTFOUND", "EAI_AGAIN", "timeout",
                                                                    "EHOSTUNREACH", "ECONNREFUSED"), \
            (host, port, probe.stdout, probe.stderr)


def test_the_backend_image_holds_no_postgresql_server(names):
    found = engine.docker("exec", names.backend, "sh", "-c",
                          "ls /usr/lib/postgresql/*/bin/; command -v postgres initdb pg_ctl; "
                          "test -e /var/lib/postgresql && echo DATA", check=False).stdout.split()
    assert "psql" in found and "pg_dump" in found, "the client is there"
    assert not {"postgres", "initdb", "pg_ctl", "DATA"} & set(found), found


def test_docker_shows_the_networks_the_compose_files_promise(names):
    assert engine.networks(names.db) == {names.db_network, names.db_default}
    assert engine.networks(names.backend) == {names.db_network, names.app_network}
    assert engine.networks(names.frontend) == {names.app_network}
    assert engine.networks(names.mailpit) == {names.app_network}
    assert engine.networks(names.worker) == {names.db_network, names.app_network}
    members = {c["Name"] for c in engine.inspect(names.db_network, "network")["Containers"].values()}
    assert members == {names.db, names.backend, names.worker}
    # every published port on 127.0.0.1 only
    for container in (names.db, names.backend, names.frontend, names.mailpit):
        for bindings in engine.inspect(container)["NetworkSettings"]["Ports"].values():
            assert all(b["HostIp"] == "127.0.0.1" for b in bindings or []), (container, bindings)


def test_chromium_signs_up_logs_in_and_sees_me_through_the_published_ports(names, tmp_path):
    """Signed up, the mail read in Mailpit when the address must be verified
    first, logged out and in again, and /me shows the account."""
    user = f"docker{int(time.time())}"
    password = "Docker-passphrase-1234"
    mail = f"http://127.0.0.1:{names.answers['mail_ui_port']}"
    with browser.page(tmp_path) as page:
        try:
            browser.sign_up_and_log_in(page, names.front_url, user, password, names.answers["email_verification"],
                                       mail)
        except AssertionError as error:  # the mail is the worker's: say what it did
            raise AssertionError(f"{error}\nworker:\n{engine.logs(names.worker, tail=40)}") from error
    assert names.psql(f"SELECT count(*) FROM personas_usuario WHERE username = '{user}'") == "1"


# ---------------------------------------------------------------------------
# Backups, through make
# ---------------------------------------------------------------------------
def test_backup_damage_and_restore_bring_back_every_row(project, names):
    names.psql(DATA)
    before = names.psql(STATE)
    run_make(project, "backup")
    dump = newest_dump(project)
    names.psql("DROP TABLE notes; TRUNCATE personas_usuario CASCADE")
    assert names.psql("SELECT to_regclass('notes') IS NULL") == "t"
    run_make(project, "restore", f"FILE={dump}", "YES=1")
    assert names.psql(STATE) == before
    # the backend still serves, on the restored data
    assert status(f"{names.api_url}/api/health/") == 200


def test_a_corrupt_dump_is_refused_and_the_data_left_unchanged(project, names):
    dump = newest_dump(project)
    data = (project / "db/backups" / dump).read_bytes()
    (project / "db/backups/broken.dump").write_bytes(data[:len(data) // 2])
    names.psql("DELETE FROM notes WHERE id > 2000")
    before = names.psql(STATE)
    result = run_make(project, "restore", "FILE=broken.dump", "YES=1", ok=False)
    assert result.returncode != 0
    assert "not a complete pg_dump" in result.stderr and "nothing was changed" in result.stderr, result.stderr
    assert names.psql(STATE) == before


# ---------------------------------------------------------------------------
# Faults
# ---------------------------------------------------------------------------
def test_a_database_restart_under_load_gives_no_500_and_the_backend_recovers_by_itself(names):
    started = engine.inspect(names.backend)["State"]["StartedAt"]
    requests = [("GET", "/api/health/", {})]
    with traffic.Traffic(names.api_url, requests, clients=4, timeout=10) as load:
        time.sleep(2)
        engine.docker("restart", names.db, timeout=120)
        engine.wait_healthy(names.db)
        back = time.monotonic()
        engine.wait_for(lambda: status(f"{names.api_url}/api/health/") == 200, 30, "health 200 again")
        time.sleep(max(0.0, back + 8 - time.monotonic()))
    statuses = {a.status for a in load.answers}
    assert 500 not in statuses and statuses <= {200, 503}, load.counts()
    assert {a.status for a in load.answers if a.started > back + 5} == {200}, load.counts()
    assert engine.inspect(names.backend)["State"]["StartedAt"] == started, "no restart of the backend"


def test_a_crashed_backend_is_brought_back_by_its_restart_policy(names):
    """Its process killed as the kernel's OOM killer or a crash would
    (`docker kill` is a deliberate stop to Docker, which unless-stopped obeys)."""
    before = engine.inspect(names.backend)["State"]
    os.kill(before["Pid"], signal.SIGKILL)
    engine.wait_for(lambda: engine.inspect(names.backend)["State"]["StartedAt"] != before["StartedAt"], 60,
                    "the backend restarted", diagnose=lambda: str(engine.inspect(names.backend)["State"]))
    engine.wait_healthy(names.backend)
    assert status(f"{names.api_url}/api/health/") == 200


# ---------------------------------------------------------------------------
# Any host user: the bind-mounted code belongs to whoever rendered it
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("uid", [0, 1000, 1001])
def test_the_dev_frontend_serves_whoever_owns_the_code(project, names, uid):
    """As scripts/new-project leaves it: the secrets' env files 0600, owned by
    the host's user, like the rest of the code."""
    subprocess.run(["chown", "-R", f"{uid}:{uid}", str(project)], check=True)
    for env_file in ("db/.env", "back/.env"):
        (project / env_file).chmod(0o600)
    engine.docker("rm", "-f", names.frontend)
    run_make(project, "up")
    engine.wait_healthy(names.frontend, timeout=180)
    assert status(f"{names.front_url}/") == 200
    # what vite writes goes somewhere it may
    assert "EACCES" not in engine.logs(names.frontend, tail=200)


# ---------------------------------------------------------------------------
# Bad order and bad state: a message naming the fix, never a stack trace
# ---------------------------------------------------------------------------
@pytest.fixture
def fresh(docker_engine, tmp_path) -> Path:
    path = render_example("giga", tmp_path / "giga", extra=own_names("order", 10))
    yield path
    teardown(path)


def test_make_up_before_db_up_says_to_start_the_database_first(fresh):
    result = run_make(fresh, "up", ok=False)
    assert result.returncode != 0
    assert "make db-up" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert not engine.exists("order_backend_dev")


def test_a_missing_db_env_is_named_with_its_fix(fresh):
    (fresh / "db/.env").unlink()
    result = run_make(fresh, "db-up", ok=False)
    assert result.returncode != 0
    assert "db/.env" in result.stderr and ".env.example" in result.stderr, result.stderr
    assert not engine.exists("order_db_dev")


def test_a_taken_host_port_is_named_with_its_fix(docker_engine, tmp_path):
    project = render_example("giga", tmp_path / "giga", extra=own_names("taken", 20, db_host_port=15432))
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 15432))
        holder.listen()
        try:
            result = run_make(project, "db-up", ok=False)
        finally:
            teardown(project)
    assert result.returncode != 0
    assert "15432" in result.stderr and "db_host_port" in result.stderr, result.stderr

