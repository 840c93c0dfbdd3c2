"""Full tier: the backend while its database is away, on the production server
(granian) and the image's entrypoint: readiness 503 while liveness stays 200,
and back to 200 without a restart; a late database waited for, a database
that never comes given up on, and eight clients through a real PostgreSQL
restart.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness.backend import Backend, http
from harness.traffic import Traffic
from harness.back_project import create_user


@pytest.mark.full
@pytest.mark.parametrize("connections", ["persistent", "pool"])
def test_health_is_503_while_the_db_is_down_and_recovers_without_restart(giga_project, fresh_db_server,
                                                                          backend_venv, connections):
    """Readiness (/api/health/) follows the database and the migrations;
    liveness (/api/health/live/) stays 200 throughout, so an orchestrator
    restarts nothing, and nothing is restarted."""
    db = fresh_db_server(giga_project)
    backend = Backend(giga_project, db, backend_venv)
    # personas up to 0004 (and what it needs) only: its users table answers, yet
    # migrations are unapplied, so not ready
    backend.manage("migrate", "--noinput", "personas", "0004", check=True)
    with backend.serve(env={"DB_POOL": "1"} if connections == "pool" else {}) as (base, process):
        before = granian_processes(process)
        assert http("GET", f"{base}/api/health/")[:2] == (503, {"status": "unavailable"})
        assert http("GET", f"{base}/api/health/live/")[:2] == (200, {"status": "ok"})
        backend.manage("migrate", "--noinput", check=True)
        status, body, _ = http("GET", f"{base}/api/health/")
        assert status == 200, body
        db.stop()
        for _ in range(3):
            status, body, elapsed = http("GET", f"{base}/api/health/", timeout=10)
            # the public learns nothing of the database: no host, address, port or role
            assert (status, body) == (503, {"status": "unavailable"})
            assert elapsed < 5, f"answered after {elapsed:.1f}s"
            status, body, elapsed = http("GET", f"{base}/api/health/live/", timeout=10)
            assert (status, body) == (200, {"status": "ok"}), "liveness must not depend on the database"
            assert elapsed < 1, f"live answered after {elapsed:.1f}s"
        db.start()
        deadline = time.monotonic() + 30
        while True:
            status, body, _ = http("GET", f"{base}/api/health/", timeout=10)
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert status == 200, body
        assert http("GET", f"{base}/api/health/live/")[:2] == (200, {"status": "ok"})
        assert process.poll() is None, "the backend must recover without a restart"
        assert granian_processes(process) == before, "the server or a worker was restarted"
    log = process.log_path.read_text()
    assert log.count("Starting granian") == 1, log
    # ... the log does: libpq's reason, naming the server (with the pool, psycopg's pool logs it)
    assert "Health check: database unavailable" in log
    # ... and why it was not ready before migrate
    assert re.search(r"Health check: not ready: \d+ migration\(s\) unapplied: .* \(run migrate\)", log), log[-3000:]
    assert any(f"port {db.port}" in line and db.address in line for line in log.splitlines()), log[-3000:]
    assert "sqlite" not in log.lower()


@pytest.mark.full
def test_entrypoint_waits_for_a_late_db_and_migrates_only_on_request(giga_project, fresh_db_server, backend_venv):
    db = fresh_db_server(giga_project)
    backend = Backend(giga_project, db, backend_venv)
    db.stop()
    process = subprocess.Popen([*backend.prefix(), "docker-entrypoint.sh", "python", "manage.py", "showmigrations",
                                "personas"], cwd=backend.dir, env=backend.environment(DB_WAIT_TIMEOUT="60"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # The database comes back once the entrypoint has found it down, however
    # long the entrypoint took to start.
    seen = []
    for line in process.stderr:
        seen.append(line)
        if "unavailable (attempt" in line:
            break
    db.start()
    stdout, stderr = process.communicate(timeout=120)
    assert "unavailable (attempt" in seen[-1], "".join(seen)
    assert process.returncode == 0, stdout + stderr
    assert "is up (attempt" in stderr  # logged, as every line of the backend
    assert "[ ] 0001_initial" in stdout, "migrated without DJANGO_MIGRATE_ON_START=1"
    result = backend.run("docker-entrypoint.sh", "python", "manage.py", "showmigrations", "personas",
                         env={"DJANGO_MIGRATE_ON_START": "1"})
    assert result.returncode == 0, result.stderr
    assert "[X] 0001_initial" in result.stdout


@pytest.mark.full
def test_wait_for_db_gives_up_with_exit_1(giga_project, fresh_db_server, backend_venv):
    db = fresh_db_server(giga_project)
    backend = Backend(giga_project, db, backend_venv)
    db.stop()
    # the image's own ENTRYPOINT + CMD: the server never starts
    started = time.monotonic()
    result = backend.run(*backend.stage.entrypoint, *backend.stage.cmd, env={"DB_WAIT_TIMEOUT": "3"}, timeout=60)
    took = time.monotonic() - started
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Starting granian" not in result.stdout + result.stderr
    # one clear last line: which database, how long it was given, libpq's reason
    last = result.stderr.strip().splitlines()[-1]
    assert f"@{backend.db_service}:{db.port}/" in last and "still unavailable after" in last and "in 3s" in last, last
    assert "Connection refused" in last or "connection failed" in last, last
    assert took < 3 + 10, f"gave up after {took:.1f}s"


def granian_processes(process) -> list[tuple[int, str]]:
    """(pid, command line) of the server and its workers: the same list
    before and after means nothing was restarted."""
    def cmdline(pid: int) -> str:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()

    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    return [(pid, cmdline(pid)) for pid in [process.pid, *map(int, children)]]


@pytest.mark.full
def test_backend_started_before_the_db_serves_once_it_is_up(giga_project, fresh_db_server, backend_venv,
                                                            tmp_path):
    """The container's ENTRYPOINT + CMD started while the DB is down: it
    waits, then the same process (exec'd, not restarted) serves."""
    db = fresh_db_server(giga_project)
    backend = Backend(giga_project, db, backend_venv)
    backend.manage("migrate", "--noinput", check=True)
    db.stop()
    log = tmp_path / "backend.log"
    log.touch()

    def start_once_found_down() -> None:
        # however long the entrypoint takes to start
        while "unavailable (attempt" not in log.read_text():
            time.sleep(0.1)
        db.start()
    threading.Thread(target=start_once_found_down, daemon=True).start()
    with backend.serve(env={"DB_WAIT_TIMEOUT": "60"}, ready_timeout=90, log=log) as (base, process):
        assert db.is_running()
        assert http("GET", f"{base}/api/health/")[:2] == (200, {"status": "ok"})
        assert process.poll() is None
        # the entrypoint exec'd the CMD: the process started is the server
        assert "granian" in granian_processes(process)[0][1]
    log = process.log_path.read_text()
    assert "unavailable (attempt 1," in log and "is up (attempt" in log, log
    assert log.count("Starting granian") == 1, log


@pytest.mark.full
def test_db_restarted_under_load(giga_project, fresh_db_server, backend_venv):
    """8 clients for 15 s on /api/health/ and an authenticated read while
    PostgreSQL restarts: answers are 200 or 503 (never a 500, never a hang
    past the connect timeout), all 200 again within 5 s of the DB's return,
    and the server is the one that started."""
    db = fresh_db_server(giga_project)
    backend = Backend(giga_project, db, backend_venv)
    backend.manage("migrate", "--noinput", check=True)
    create_user(backend, "load-user", "a-Strong-passw0rd!")
    connect_timeout = int(backend.environment().get("DB_CONNECT_TIMEOUT", "3"))
    timeout = connect_timeout + 3  # the client's patience: the server's bound plus a margin
    with backend.serve() as (base, process):
        status, body, _ = http("POST", f"{base}/api/auth/login/", {"username": "load-user",
                                                                    "password": "a-Strong-passw0rd!"})
        assert status == 200, body
        token = {"Authorization": f"Token {body['token']}"}
        before = granian_processes(process)
        requests = [("GET", "/api/health/", {}), ("GET", "/api/auth/me/", token)]
        with Traffic(base, requests, clients=8, timeout=timeout) as traffic:
            load_started = time.monotonic()
            time.sleep(4)
            down = time.monotonic()
            db.stop()
            time.sleep(2)
            db.start()  # pg_ctl -w: back once it accepts connections
            up = time.monotonic()
            # at least 3 s of load past the 5 s grace, however long the restart took
            time.sleep(max(8.0, load_started + 15 - up))
        assert process.poll() is None, "the backend died"
        assert granian_processes(process) == before, "the server or a worker was restarted"
    counts = traffic.counts()
    print(f"\nDB restarted under load (down {up - down:.1f}s): {counts}")
    report = f"{counts}; others: {dict(traffic.others())}"
    assert counts["others"] == 0, report
    assert counts["longest"] < timeout, report
    assert counts["longest"] <= connect_timeout + 1, f"a request waited past DB_CONNECT_TIMEOUT: {report}"
    # the restart was felt: 503s while the DB was away, for both requests
    outage = [a for a in traffic.answers if down <= a.started <= up]
    assert {(a.path, a.status) for a in outage} >= {("/api/health/", 503), ("/api/auth/me/", 503)}, report
    # and then it was over: everything asked 5 s after the DB's return succeeded
    recovered = [a for a in traffic.answers if a.started >= up + 5]
    assert len(recovered) > 50 and {a.status for a in recovered} == {200}, report
    last_failure = max((a.started + a.latency for a in traffic.answers if a.status != 200), default=up)
    print(f"last failure {last_failure - up:+.1f}s after the DB's return")
    # before the restart, all well too
    assert {a.status for a in traffic.answers if a.started + a.latency < down} == {200}, report
    log = process.log_path.read_text()
    assert log.count("Starting granian") == 1, log[-3000:]
