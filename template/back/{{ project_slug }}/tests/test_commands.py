"""wait_for_db and verify_architecture."""

import contextlib
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from ..management.commands.verify_architecture import (
    FILE_DB_MAGIC,
    Abort,
    file_databases,
    network_isolation,
    postgres_data_dirs,
)

BACK = Path(settings.BASE_DIR)


def test_wait_for_db_returns_once_connected(caplog, db):
    caplog.set_level(logging.INFO)
    call_command("wait_for_db", "--timeout", "5")
    assert "is up (attempt 1" in caplog.text


def test_wait_for_db_migrated_waits_for_the_migrations(caplog, db, monkeypatch):
    call_command("wait_for_db", "--migrated", "--timeout", "5")  # the test database is migrated
    from ..management.commands import wait_for_db

    monkeypatch.setattr(wait_for_db, "unapplied", lambda connection: ["personas.0099_next"])
    with pytest.raises(CommandError, match=r"1 migration\(s\) still unapplied .* run `python manage.py migrate`"):
        call_command("wait_for_db", "--migrated", "--timeout", "0.3", "--interval", "0.1")
    assert "waiting for `python manage.py migrate`" in caplog.text


def test_db_worker_is_the_one_that_outlives_a_database_outage(monkeypatch, caplog):
    from django.core.management import get_commands
    from django.db.utils import OperationalError
    from django_tasks_db.management.commands import db_worker as tasks_db_worker

    from ..management.commands import db_worker

    assert get_commands()["db_worker"] == __package__.partition(".")[0]
    attempts = []

    def run_until_the_database_answers(worker):
        attempts.append(worker)
        if len(attempts) == 1:
            raise OperationalError("FATAL:  the database system is shutting down")

    monkeypatch.setattr(tasks_db_worker.Worker, "run", run_until_the_database_answers)
    monkeypatch.setattr(db_worker, "RETRY_SECONDS", 0)
    worker = db_worker.Worker(queue_names=["default"], interval=0, batch=True, backend_name="default",
                              startup_delay=False, max_tasks=None, worker_id="w", excluded_queue_names=[])
    worker.run()
    assert len(attempts) == 2
    assert "Database unavailable (FATAL:  the database system is shutting down)" in caplog.text


def test_wait_for_db_gives_up_with_a_line_per_attempt():
    env = {**os.environ, "DB_HOST": "127.0.0.1", "DB_PORT": "9", "DB_WAIT_TIMEOUT": "2.5"}
    result = subprocess.run([sys.executable, "manage.py", "wait_for_db", "--interval", "0.5"],
                            cwd=BACK, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    attempts = [line for line in result.stderr.splitlines() if "unavailable (attempt" in line]
    assert len(attempts) >= 2, result.stderr
    assert "127.0.0.1:9" in attempts[0]
    assert "still unavailable after" in result.stderr


@pytest.mark.django_db
def test_verify_architecture_database_lines(capsys):
    # The HOST line and the data-directory line depend on where the tests run
    # (inside the container, every line passes);
    # every other line must pass anywhere.
    with contextlib.suppress(CommandError):
        call_command("verify_architecture")
    out = capsys.readouterr().out
    for title in ("ENGINE is PostgreSQL", "Connection to the isolated database", "No unapplied migrations",
                  "Django's tables exist", "Write/read round trip", "No embedded file database"):
        assert f"✅ {title}" in out, out
    assert out.count("✅") + out.count("❌") == 9


def test_file_databases_are_found_by_content_and_by_name(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "data.bin").write_bytes(FILE_DB_MAGIC + b"\0" * 100)
    (tmp_path / "db.sqlite3").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("nothing here")
    found = {path.name for path in file_databases(tmp_path)}
    assert found == {"data.bin", "db.sqlite3"}


def test_postgres_data_directories_are_found(tmp_path):
    data = tmp_path / "srv" / "pgdata"
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("16\n")
    assert data in postgres_data_dirs(roots=(tmp_path,))


# -- networks: the compose files' layout, as docker compose creates it -------
DB_COMPOSE: dict[str, Any] = dict(
    name="p_db",
    services={"p-db": dict(networks=["p_net"])},
    networks={"p_net": dict(name="p_net")},
)


def dev_compose(backend, frontend, **extra_services):
    return dict(
        name="p_dev",
        services=dict(backend=dict(networks=backend), frontend=dict(networks=frontend), **extra_services),
        networks=dict(db=dict(name="p_net", external=True), app=dict(name="p_app")),
    )


def test_network_isolation_accepts_the_two_network_layout():
    summary = network_isolation(DB_COMPOSE, dev_compose(["db", "app"], ["app"]), "p-db")
    assert summary == "p_net: p-db and backend only; frontend reaches backend on p_app"


def test_network_isolation_accepts_the_backends_task_worker():
    summary = network_isolation(DB_COMPOSE, dev_compose(["db", "app"], ["app"], worker=dict(networks=["db", "app"])),
                                "p-db")
    assert summary == "p_net: p-db, backend and worker only; frontend reaches backend on p_app"


@pytest.mark.parametrize("dev, reason", [
    # the frontend on the database's network, by key, with aliases, or by the network's real name
    (dev_compose(["db", "app"], ["app", "db"]), "frontend (on p_net) can reach the database"),
    (dev_compose(["db", "app"], dict(db=dict(aliases=["front"]), app=None)), "frontend (on p_net)"),
    (dev_compose(["db", "app"], ["app"], adminer=dict(networks=["db"])), "adminer (on p_net) can reach"),
    # the backend cannot reach the database, or the frontend cannot reach the backend
    (dev_compose(["app"], ["app"]), "'backend' shares no network with 'p-db'"),
    (dev_compose(["db"], ["app"]), "'frontend' shares no network with 'backend'"),
    # a service that names no network is on its project's default network
    (dev_compose(["db", "app"], None), "'frontend' shares no network with 'backend'"),
])
def test_network_isolation_refuses_other_layouts(dev, reason):
    with pytest.raises(Abort, match=re.escape(reason)):
        network_isolation(DB_COMPOSE, dev, "p-db")


def test_a_service_in_the_db_project_is_on_its_network_too():
    db = dict(DB_COMPOSE, services=dict(DB_COMPOSE["services"], pgadmin=dict(networks=["p_net"])))
    with pytest.raises(Abort, match=r"pgadmin \(on p_net\) can reach the database"):
        network_isolation(db, dev_compose(["db", "app"], ["app"]), "p-db")
