"""`make verify`, the architecture checklist, on a real Docker engine.

One project, brought up once with its own make targets (`make db-up`,
`make up`, `make migrate`), then the generated scripts/verify run against the
live containers: it passes every item on a healthy stack, really restarting
the database and not the backend, and each way of breaking the architecture
(done to the live containers, as it would happen) turns exactly its own items
❌ and make's exit status non-zero. Each case restores the healthy stack
before the next.

Its names and ports (slug `verify`, ports 18000/15173/18025, no published
database port) are its own, so it can share the engine with the other docker
modules, at the same time or not.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from harness import engine
from harness.docker_stack import Names, own_names, run_make, status, teardown
from harness.render import render_example

pytestmark = [pytest.mark.full, pytest.mark.docker]

ANSWERS = own_names("verify", 0, project_name="Verify")
OTHER_DB = "test_verify"  # the one other database pg_hba.conf lets the app role into

CHECKLIST = [
    "Database container {db} is up and healthy",
    "The backend has no database of its own",
    "The backend's settings point at the database service",
    "Migrations are applied",
    "Django's tables are in the isolated database (psql in {db})",
    "A user written through the backend is read back in {db}",
    "Only the backend shares a network with the database (compose files)",
    "{db} and {backend} are on {network}, {frontend} is not",
    "The backend reconnects after a database restart",
]
ITEMS = [item.format(db="verify_db_dev", backend="verify_backend_dev", network="verify_dev_network",
                     frontend="verify_frontend_dev").split(" (")[0] for item in CHECKLIST]
(DB_UP, NO_OWN_DB, SETTINGS, MIGRATED, TABLES, READ_BACK, COMPOSE_NETWORKS, LIVE_NETWORK, RECONNECTS) = ITEMS


@pytest.fixture(scope="module")
def project(docker_engine, tmp_path_factory) -> Path:
    """The project, up and migrated through make; everything it started
    removed afterwards."""
    path = render_example("giga", tmp_path_factory.mktemp("verify") / "verify", extra=ANSWERS)
    names = Names(path)
    assert (names.db, names.backend, names.db_network) == ("verify_db_dev", "verify_backend_dev",
                                                           "verify_dev_network")
    try:
        run_make(path, "db-up")
        run_make(path, "up")
        engine.wait_for(lambda: status(f"{names.api_url}/api/health/") == 503, 120, "the backend answering",
                        diagnose=lambda: engine.logs(names.backend))
        run_make(path, "migrate")
        engine.wait_healthy(names.backend, timeout=120)
        yield path
    finally:
        teardown(path)


@pytest.fixture(scope="module")
def names(project) -> Names:
    return Names(project)


@pytest.fixture(scope="module")
def compose_text(project) -> str:
    """docker-compose.dev.yml as rendered."""
    return (project / "docker-compose.dev.yml").read_text()


def psql(names: Names, sql: str, database: str | None = None) -> str:
    """psql in the DB container, as the app role, in its database or `database`."""
    return engine.docker("exec", names.db, "psql", "-U", names.answers["db_user"],
                         "-d", database or names.answers["db_name"], "--no-psqlrc", "-v", "ON_ERROR_STOP=1",
                         "-At", "-c", sql).stdout.strip()


def probe_users(names: Names, database: str | None = None) -> str:
    return psql(names, "SELECT count(*) FROM personas_usuario WHERE username LIKE 'verify-probe-%'", database)


def events(since: float, until: float) -> list[tuple[str, str]]:
    """(container, action) of every event of this project's containers
    between the two times (other modules may share the engine)."""
    result = engine.docker("events", "--since", f"{since:.3f}", "--until", f"{until:.3f}",
                           "--filter", "type=container", "--format", "{{.Actor.Attributes.name}}\t{{.Action}}")
    return [tuple(line.split("\t", 1)) for line in result.stdout.splitlines()
            if line.startswith(f"{ANSWERS['project_slug']}_")]


def verify(project: Path, *variables: str) -> tuple[int, dict[str, str], str, list[tuple[str, str]]]:
    """`make verify VARIABLES`: (exit status, checklist item -> ✅/❌/-, output,
    the container events meanwhile)."""
    started = time.time()
    result = run_make(project, "verify", *variables, ok=False, timeout=600)
    time.sleep(0.1)  # the engine's last events in, before --until
    names = Names(project)
    titles = [item.format(db=names.db, backend=names.backend, frontend=names.frontend,
                          network=names.db_network) for item in CHECKLIST]
    marks = {}
    for title in titles:
        (mark,) = [line[0] for line in result.stdout.splitlines() if line[2:].startswith(title)] or ["-"]
        marks[title.split(" (")[0]] = mark
    return result.returncode, marks, result.stdout + result.stderr, events(started - 0.5, time.time())


def assert_healthy(project: Path, names: Names, compose_text: str) -> None:
    """The stack as the module fixture left it: what each case starts from."""
    assert (project / "docker-compose.dev.yml").read_text() == compose_text
    assert engine.health(names.db) == "healthy"
    engine.wait_for(lambda: status(f"{names.api_url}/api/health/") == 200, 60, "the backend's health 200",
                    diagnose=lambda: engine.logs(names.backend))
    assert engine.inspect(names.backend)["Config"]["Env"].count(f"DB_NAME={names.answers['db_name']}") == 1
    assert engine.networks(names.frontend) == {names.app_network}
    assert engine.networks(names.backend) == {names.db_network, names.app_network}
    assert probe_users(names) == "0"


# ---------------------------------------------------------------------------
# A healthy stack
# ---------------------------------------------------------------------------
def test_make_verify_passes_every_item_with_a_real_database_restart(project, names, compose_text):
    assert_healthy(project, names, compose_text)
    db_started = engine.inspect(names.db)["State"]["StartedAt"]
    backend_started = engine.inspect(names.backend)["State"]["StartedAt"]
    code, marks, output, seen = verify(project)
    assert code == 0, output
    assert list(marks.values()) == ["✅"] * len(CHECKLIST), output
    assert "Every checklist item passed." in output
    # the database container really restarted; the backend container did not
    assert engine.inspect(names.db)["State"]["StartedAt"] != db_started
    assert engine.inspect(names.backend)["State"]["StartedAt"] == backend_started
    assert (names.db, "restart") in seen and not [e for e in seen if e[0] != names.db and
                                                   e[1] in ("die", "stop", "start", "restart")], seen
    # the probe was written through the backend, read in the DB container, and deleted
    execs = [action for container, action in seen if container == names.backend and "verify_probe" in action]
    assert [action.split("verify_probe ")[1].split()[0] for action in execs if action.startswith("exec_start")] \
        == ["create", "delete"], execs
    assert probe_users(names) == "0"


def test_make_verify_no_restart_skips_only_the_restart(project, names, compose_text):
    assert_healthy(project, names, compose_text)
    db_started = engine.inspect(names.db)["State"]["StartedAt"]
    code, marks, output, seen = verify(project, "NO_RESTART=1")
    assert code == 0, output
    assert {title for title, mark in marks.items() if mark != "✅"} == {RECONNECTS}, output
    assert marks[RECONNECTS] == "-" and "skipped (--no-restart)" in output
    assert engine.inspect(names.db)["State"]["StartedAt"] == db_started
    assert not [e for e in seen if e[1] in ("die", "stop", "start", "restart")], seen


# ---------------------------------------------------------------------------
# Broken architectures: each breaks the live stack, and restores it after
# ---------------------------------------------------------------------------
def frontend_joins_the_db_network_in_compose(project: Path, names: Names) -> None:
    dev = project / "docker-compose.dev.yml"
    data = yaml.safe_load(dev.read_text())
    data["services"]["frontend"]["networks"][names.db_network] = None
    # rewritten in place: the backend sees it through its bind mount of this file
    dev.write_text(yaml.safe_dump(data, sort_keys=False))


@contextlib.contextmanager
def backend_restarted_when_the_db_dies(names: Names):
    """A backend that does not survive the database's restart: when the
    database container dies, the backend container is restarted too."""
    watch = subprocess.Popen(["docker", "events", "--filter", f"container={names.db}", "--filter", "event=die",
                              "--format", "{{.Action}}"], stdout=subprocess.PIPE, text=True)
    restarted = []

    def follow():
        if watch.stdout.readline():
            restarted.append(engine.docker("restart", "-t", "5", names.backend, check=False).returncode)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    try:
        yield restarted
    finally:
        watch.terminate()
        watch.wait(timeout=30)
        thread.join(timeout=60)


@contextlib.contextmanager
def broken(case: str, project: Path, names: Names, compose_text: str):
    """The stack broken as `case` says; healthy again afterwards."""
    dev = project / "docker-compose.dev.yml"
    try:
        if case == "frontend connected to the db network":
            engine.docker("network", "connect", names.db_network, names.frontend)
        elif case == "frontend on the db network in the compose file only":
            frontend_joins_the_db_network_in_compose(project, names)
        elif case == "frontend on the db network":
            frontend_joins_the_db_network_in_compose(project, names)
            run_make(project, "up")  # compose recreates the frontend on both networks
            assert engine.networks(names.frontend) == {names.app_network, names.db_network}
        elif case == "backend on another database":
            psql(names, f"CREATE DATABASE {OTHER_DB}")
            override = project.parent / "other-db.yml"
            override.write_text(yaml.safe_dump({"services": {"backend": {"environment": {"DB_NAME": OTHER_DB}}}}))
            engine.docker("compose", "-f", "docker-compose.dev.yml", "-f", str(override), "up", "-d", "backend",
                          cwd=project, timeout=300)
            engine.docker("exec", names.backend, "python", "manage.py", "migrate", "--noinput", timeout=300)
        elif case == "not migrated":
            # personas and everything built on its user model, rolled back
            engine.docker("exec", names.backend, "python", "manage.py", "migrate", "personas", "zero",
                          "--noinput", timeout=300)
        elif case == "db stopped":
            engine.docker("stop", names.db, timeout=120)
            # the process still answers: liveness holds, readiness does not
            assert status(f"{names.api_url}/api/health/live/") == 200
            assert status(f"{names.api_url}/api/health/") == 503
        elif case == "backend down":
            engine.docker("stop", names.backend, timeout=120)
        if case == "backend restarted with the db":
            with backend_restarted_when_the_db_dies(names) as restarted:
                yield
            assert restarted == [0], "the backend container was restarted while verify ran"
        else:
            yield
    finally:
        if "frontend" in case:
            dev.write_text(compose_text)
        if case == "frontend connected to the db network":
            engine.docker("network", "disconnect", names.db_network, names.frontend)
        elif case in ("frontend on the db network", "backend on another database"):
            run_make(project, "up")  # back to the compose file as rendered
            if case == "backend on another database":
                psql(names, f"DROP DATABASE {OTHER_DB} WITH (FORCE)")
        elif case == "not migrated":
            run_make(project, "migrate")
        elif case == "db stopped":
            engine.docker("start", names.db)
            engine.wait_healthy(names.db)
        elif case == "backend down":
            engine.docker("start", names.backend)
        # serving again (quicker than the healthcheck's 15 s interval)
        engine.wait_for(lambda: status(f"{names.api_url}/api/health/") == 200, 120, "the backend's health 200",
                        diagnose=lambda: engine.logs(names.backend))


CASES = [
    ("frontend connected to the db network", {LIVE_NETWORK}),
    ("frontend on the db network in the compose file only", {COMPOSE_NETWORKS}),
    ("frontend on the db network", {COMPOSE_NETWORKS, LIVE_NETWORK}),
    ("backend on another database", {READ_BACK}),
    ("not migrated", {MIGRATED, TABLES, READ_BACK}),
    ("db stopped", {DB_UP, SETTINGS, MIGRATED, TABLES, READ_BACK, LIVE_NETWORK}),
    ("backend restarted with the db", {RECONNECTS}),
    # psql in the DB container still sees Django's tables
    ("backend down", set(ITEMS) - {DB_UP, TABLES}),
]


@pytest.mark.parametrize("case, failing", CASES, ids=[case for case, _ in CASES])
def test_make_verify_fails_exactly_the_broken_items(project, names, compose_text, case, failing):
    """Each way the architecture can be broken turns its own items ❌, the
    others stay ✅, and make exits non-zero."""
    assert_healthy(project, names, compose_text)
    restarts = RECONNECTS in failing  # else the last item (a database restart) is skipped
    with broken(case, project, names, compose_text):
        code, marks, output, _ = verify(project, *([] if restarts else ["NO_RESTART=1"]))
        if case == "backend on another database":
            assert probe_users(names, OTHER_DB) == "0", "the probe is deleted on failure too"
    assert code != 0, output
    assert "checklist item(s) failed" in output
    assert {title for title, mark in marks.items() if mark == "❌"} == failing, output
    assert {title: mark for title, mark in marks.items() if title not in failing} == \
        {title: "-" if title == RECONNECTS and not restarts else "✅" for title in ITEMS if title not in failing}, output
    if case == "backend restarted with the db":
        assert "the backend container was restarted" in output, output
    if case == "backend down":  # said at once, without waiting out the reconnection's time
        assert f"{names.backend} is exited" in output, output
    assert probe_users(names) == "0", "the probe is deleted on failure too"
