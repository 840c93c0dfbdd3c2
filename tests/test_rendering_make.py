"""Quick tier: the Makefile, the team's entry point: its targets in the order
things start, each running the documented command (`make -n`); its
preflights, run for real with a fake `docker` first on PATH (a missing env
file, the database's network, a taken port and the question that chose it);
and `scripts/env-files`, which writes only the missing env files.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.answers import recorded as answers
from harness import compose, dotenv, make


# ---------------------------------------------------------------------------
# The Makefile: the team's entry point, in the order things start
# ---------------------------------------------------------------------------
FLOW = ["db-up", "up", "migrate", "verify", "backup", "backups", "restore", "db-backup-physical",
        "db-backups-physical", "db-pitr", "db-drill", "psql", "db-stats", "db-upgrade", "api-types", "e2e", "logs",
        "down", "prod-db-up", "prod-up", "prod-logs", "prod-down", "template-update", "template-drift"]


def test_make_help_lists_the_flow_in_order(example):
    assert make.targets(example) == ["help", *FLOW]
    assert make.make(example).stdout == make.make(example, "help").stdout, "help is the default goal"


def test_make_targets_run_the_documented_commands(example):
    a = answers(example)
    db, backend = f"{a['project_slug']}_db_dev", f"{a['project_slug']}_backend_dev"
    dev = ["docker", "compose", "-f", "docker-compose.dev.yml"]
    expected = {
        # through scripts/compose-up, which explains a missing network or a taken port
        "db-up": [["cd", "db", "&&", "../scripts/compose-up", "docker", "compose", "up", "-d", "--build", "--wait"]],
        "up": [["scripts/compose-up", "--after", "db-up", *dev, "up", "-d", "--build", "--renew-anon-volumes", "backend", "worker", "frontend",
                "mailpit"]],
        "migrate": [["docker", "exec", backend, "python", "manage.py", "migrate"]],
        "verify": [["scripts/verify"]],
        "e2e": [["cd", "front", "&&", "npm", "run", "test:e2e"]],
        "backup": [["docker", "exec", db, "backup"]],
        "backups": [["docker", "exec", db, "list-backups"]],
        "psql": [["docker", "exec", "-it", db, "psql", "-U", a["db_user"], "-d", a["db_name"]]],
        "down": [[*dev, "down"], ["cd", "db", "&&", "docker", "compose", "down"]],
    }
    for target, commands in expected.items():
        assert make.commands(example, target) == commands, target
    # the container names and scripts the targets use are the ones the project defines
    assert {db, backend} <= {service["container_name"] for path in compose.COMPOSE_FILES
                             for service in compose.load(example / path)["services"].values()}
    assert {"backup", "list-backups", "restore"} <= {p.name for p in (example / "db/bin").iterdir()}


def test_make_verify_runs_the_checklist_script_which_names_the_projects_containers(example):
    a = answers(example)
    assert make.commands(example, "verify", NO_RESTART="1") == [["scripts/verify", "--no-restart"]]
    script = example / "scripts/verify"
    assert os.access(script, os.X_OK), "make runs it directly"
    # the three tiers; the optional profiles' containers, the mail catcher and
    # the backend's task worker (no part of the architecture's checklist) are not on it
    containers = {service["container_name"] for path in compose.COMPOSE_FILES
                  for name, service in compose.load(example / path)["services"].items()
                  if not service.get("profiles") and name not in ("mailpit", "worker")}
    text = script.read_text()
    named = set(re.findall(r"^(?:DB|BACKEND|FRONTEND)=(\S+)$", text, re.M))
    assert named == containers and len(named) == 3, named
    assert f"NETWORK={a['network_name']}\n" in text
    assert f"psql -U {a['db_user']} -d {a['db_name']} " in text
    result = subprocess.run([str(script), "--bogus"], capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 2 and "usage:" in result.stderr, "a wrong flag runs nothing"


def test_make_restore_asks_unless_yes_and_needs_a_file(example):
    db = f"{answers(example)['project_slug']}_db_dev"
    assert make.commands(example, "restore", FILE="a.dump")[-1] == ["docker", "exec", "-it", db, "restore", "a.dump"]
    # YES=1 needs no terminal: scripts and cron can restore
    assert make.commands(example, "restore", FILE="a.dump", YES="1")[-1] == \
        ["docker", "exec", "-i", db, "restore", "a.dump", "--yes"]
    result = make.make(example, "restore")
    assert result.returncode != 0 and "FILE is required" in result.stderr, result.stderr


def test_make_db_upgrade_runs_the_upgrade_script_and_needs_from(example):
    assert make.commands(example, "db-upgrade", FROM="16")[-1] == ["scripts/db-upgrade", "16"]
    assert make.commands(example, "db-upgrade", FROM="17", FORCE="1")[-1] == ["scripts/db-upgrade", "17", "--force"]
    result = make.make(example, "db-upgrade")
    assert result.returncode != 0 and "FROM is required" in result.stderr, result.stderr


# ---------------------------------------------------------------------------
# The Makefile's preflights, run for real with a fake `docker` (quick, no engine;
# test_docker_dev.py meets the same failures on the real one):
# a missing env file is named with its fix before any docker command runs.
# scripts/compose-up's own cases (the network, a taken port) need an engine's
# answers: test_compose_up_* below feed it the engine's recorded messages, and
# the docker tier runs them on a real engine.
# ---------------------------------------------------------------------------
FAKE_DOCKER = """#!/bin/sh
# Records every call; `network inspect` finds the network unless FAKE_NETWORK=missing,
# `volume inspect` no volume unless FAKE_VOLUME=present; anything else prints FAKE_STDERR to stderr and exits FAKE_STATUS.
printf '%s\\n' "$*" >> "$FAKE_DOCKER_LOG"
if [ "$1 $2" = "network inspect" ]; then
  if [ "${FAKE_NETWORK:-}" = missing ]; then echo "Error response from daemon: network $3 not found" >&2; exit 1; fi
  echo '[]'; exit 0
fi
if [ "$1 $2" = "volume inspect" ]; then
  if [ "${FAKE_VOLUME:-}" = present ]; then echo '[]'; exit 0; fi
  echo "Error response from daemon: get $3: no such volume" >&2; exit 1
fi
[ -z "${FAKE_STDERR:-}" ] || printf '%s\\n' "$FAKE_STDERR" >&2
exit "${FAKE_STATUS:-0}"
"""


class FakeDocker:
    """A copy of a project, and a `docker` first on PATH that records its calls."""

    def __init__(self, project: Path, tmp_path: Path):
        self.project = tmp_path / "project"
        shutil.copytree(project, self.project, ignore=shutil.ignore_patterns("node_modules"))
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        (bin_dir / "docker").write_text(FAKE_DOCKER)
        (bin_dir / "docker").chmod(0o755)
        self.log = tmp_path / "docker.log"
        self.env = {"PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path),
                    "FAKE_DOCKER_LOG": str(self.log)}

    def make(self, *args: str, **fake: str) -> subprocess.CompletedProcess:
        return make.make(self.project, *args, env={**self.env, **fake})

    def run(self, *argv: str, cwd: str = ".", **fake: str) -> subprocess.CompletedProcess:
        return subprocess.run(argv, cwd=self.project / cwd, env={**self.env, **fake},
                              capture_output=True, text=True, timeout=60)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


@pytest.fixture
def fake_docker(giga_project, tmp_path) -> FakeDocker:
    return FakeDocker(giga_project, tmp_path)


# target -> the env files it needs (the compose files' env_file, and db/'s .env for interpolation)
PREFLIGHT_ENV_FILES = {"db-up": ["db/.env"], "up": ["back/.env", "front/.env"],
                       "prod-db-up": ["db/.env"], "prod-up": ["back/.env", "front/.env"]}


@pytest.mark.parametrize("target, env_file", [(target, env_file) for target, files in PREFLIGHT_ENV_FILES.items()
                                              for env_file in files])
def test_a_missing_env_file_stops_make_with_its_fix_before_docker_runs(fake_docker, target, env_file):
    (fake_docker.project / env_file).unlink()
    result = fake_docker.make(target)
    assert result.returncode != 0
    message = result.stderr
    assert message.startswith(f"{env_file} is missing. It holds "), message
    assert "git ignores it, so a fresh clone has none" in message
    assert f"write a new one from {env_file}.example:\n    scripts/env-files\n" in message
    assert f"(by hand: cp {env_file}.example {env_file}" in message
    assert "Traceback" not in message and "not found: stat" not in message
    assert fake_docker.calls() == [], "nothing reaches docker"


def test_env_file_messages_say_what_each_file_holds(fake_docker):
    result = fake_docker.run("scripts/env-files", "--check", "db/.env", "back/.env", "front/.env")
    assert result.returncode == 0 and result.stderr == ""
    for env_file in ("db/.env", "back/.env", "front/.env"):
        (fake_docker.project / env_file).unlink()
    result = fake_docker.run("scripts/env-files", "--check", "db/.env", "back/.env", "front/.env")
    assert result.returncode == 1
    db, back, front = re.split(r"^(?=\S+/\.env is missing)", result.stderr, flags=re.M)[1:]
    # the secrets each .env.example leaves as change-me are named
    for message, env_file in ((db, "db/.env"), (back, "back/.env")):
        placeholders = [key for key, value in dotenv.load(fake_docker.project / f"{env_file}.example").items()
                        if value.startswith("change-me")]
        assert placeholders and all(key in message for key in placeholders), (env_file, placeholders)
    assert "giga_db_data_16 keeps the passwords of that first start" in db
    assert "DB_PASSWORD to db/.env's APP_DB_PASSWORD" in back and "logs every user out" in back
    assert "no secret" in front and "cp front/.env.example front/.env" in front
    assert fake_docker.run("scripts/env-files", "--check", "db/.env.example").returncode == 2


def test_make_up_checks_the_database_network_first(fake_docker):
    result = fake_docker.make("up", FAKE_NETWORK="missing")
    assert result.returncode != 0
    assert ("The database's network giga_dev_network is missing: it is created when the database starts"
            in result.stderr), result.stderr
    assert "Fix: start the database first with `make db-up`, then run this again." in result.stderr
    assert fake_docker.calls() == ["network inspect giga_dev_network"], "compose never ran"
    result = fake_docker.make("prod-up", FAKE_NETWORK="missing")
    assert "`make prod-db-up`" in result.stderr and result.returncode != 0
    # present: compose runs, with the documented command
    fake_docker.log.unlink()
    assert fake_docker.make("up").returncode == 0
    assert fake_docker.calls() == ["network inspect giga_dev_network",
                                   "compose -f docker-compose.dev.yml up -d --build --renew-anon-volumes backend worker frontend mailpit"]


# Engines word a taken port in several ways; the first address:port is the host's.
PORT_TAKEN = [
    "Error response from daemon: driver failed programming external connectivity on endpoint {container} "
    "(3f5ae1): Bind for 127.0.0.1:{port} failed: port is already allocated",
    "Error response from daemon: driver failed programming external connectivity on endpoint {container} "
    "(3f5ae1): Error starting userland proxy: listen tcp4 127.0.0.1:{port}: bind: address already in use",
    "Error response from daemon: failed to set up container networking: driver failed programming external "
    "connectivity on endpoint {container} (3f5ae1): failed to bind host port for 127.0.0.1:{port}:172.18.0.3:{port}/tcp: "
    "address already in use",
    "Error response from daemon: ports are not available: exposing port TCP 127.0.0.1:{port} -> 0.0.0.0:0: "
    "listen tcp 127.0.0.1:{port}: bind: address already in use",
]


@pytest.mark.parametrize("wording", PORT_TAKEN, ids=["allocated", "userland-proxy", "engine-28", "desktop"])
@pytest.mark.parametrize("target, question", [("db-up", "db_host_port"), ("up", "backend_port"),
                                              ("up", "frontend_port"), ("up", "mail_ui_port")])
def test_compose_up_names_a_taken_port_and_its_question(fake_docker, wording, target, question):
    a = answers(fake_docker.project)
    port = a[question]
    error = wording.format(container="giga_x_dev", port=port)
    result = fake_docker.make(target, FAKE_STATUS="1", FAKE_STDERR=error)
    assert result.returncode != 0
    assert error in result.stderr, "compose's own error stays visible"
    explanation = result.stderr[result.stderr.index(error) + len(error):]
    assert f"\n\nPort {port} on 127.0.0.1 is already in use, so {question} ({port}) cannot be published.\n" \
        f"Fix: stop what uses it (`docker ps --filter publish={port}` lists a container that does), " \
        f"or choose another port:\n    copier update --defaults -d {question}=<free port>" in explanation, explanation


def test_compose_up_explains_a_port_no_answer_chose(fake_docker):
    error = ("Error response from daemon: driver failed programming external connectivity on endpoint giga_caddy "
             "(ab12): Error starting userland proxy: listen tcp4 0.0.0.0:443: bind: address already in use")
    result = fake_docker.run("scripts/compose-up", "docker", "compose", "-f", "docker-compose.prod.yml", "up", "-d",
                             FAKE_STATUS="1", FAKE_STDERR=error)
    assert result.returncode == 1
    assert result.stderr == (f"{error}\n\nPort 443 is already in use on this machine, so a container cannot publish it.\n"
                             "Fix: stop what uses it (`docker ps --filter publish=443` lists a container that does), "
                             "then run this again.\n")


def test_compose_up_keeps_compose_output_and_status(fake_docker):
    result = fake_docker.run("../scripts/compose-up", "docker", "compose", "up", "-d", cwd="db",
                             FAKE_STATUS="3", FAKE_STDERR="service \"x\" refers to undefined volume y")
    assert (result.returncode, result.stderr) == (3, "service \"x\" refers to undefined volume y\n")
    result = fake_docker.run("../scripts/compose-up", "docker", "compose", "up", "-d", cwd="db",
                             FAKE_STATUS="1", FAKE_STDERR="network giga_dev_network declared as external, but could "
                                                          "not be found")
    assert "The database's network giga_dev_network is missing" in result.stderr
    # compose's word for a missing env file, when the Makefile's check was skipped
    (fake_docker.project / "front/.env").unlink()
    missing = fake_docker.project.resolve() / "front/.env"
    result = fake_docker.run("scripts/compose-up", "docker", "compose", "-f", "docker-compose.dev.yml", "up",
                             FAKE_STATUS="1", FAKE_STDERR=f"env file {missing} not found: stat {missing}: no such file")
    assert result.returncode == 1 and "\n\nfront/.env is missing. It holds no secret" in result.stderr, result.stderr
    assert fake_docker.run("scripts/compose-up").returncode == 2
    assert fake_docker.run("scripts/compose-up", "--after").returncode == 2


# ---------------------------------------------------------------------------
# scripts/env-files: the env files of a fresh clone (CI's stack job runs it)
# ---------------------------------------------------------------------------
ENV_FILES = ("db/.env", "back/.env", "front/.env")


def test_env_files_writes_the_missing_ones_from_their_examples(fake_docker):
    project = fake_docker.project
    for env_file in ENV_FILES:
        (project / env_file).unlink()
    result = fake_docker.run("scripts/env-files", GITHUB_ACTIONS="true")
    assert result.returncode == 0, result.stderr
    db, back, front = (dotenv.load(project / env_file) for env_file in ENV_FILES)
    for env_file in ENV_FILES:
        assert (project / env_file).stat().st_mode & 0o777 == (0o644 if env_file == "front/.env" else 0o600), env_file
        example = dotenv.load(project / f"{env_file}.example")
        written = dotenv.load(project / env_file)
        assert written.keys() == example.keys(), env_file
        # every placeholder replaced, everything else as in the example
        for key, value in example.items():
            if value.startswith("change-me"):
                assert re.fullmatch(r"[0-9a-f]{64,96}", written[key]), (env_file, key)
            else:
                assert written[key] == value, (env_file, key)
    assert back["DB_PASSWORD"] == db["APP_DB_PASSWORD"]
    secrets = [db["POSTGRES_PASSWORD"], db["APP_DB_PASSWORD"], db["MONITOR_DB_PASSWORD"],
               db["PGBACKREST_REPO1_CIPHER_PASS"], back["DJANGO_SECRET_KEY"]]
    assert len(set(secrets)) == 5 and len(back["DJANGO_SECRET_KEY"]) >= 50
    # masked in GitHub's log before use, each new one once
    assert sorted(re.findall(r"^::add-mask::(\S+)$", result.stdout, re.M)) == sorted(secrets)
    assert "db/.env: written from db/.env.example (mode 0600); new POSTGRES_PASSWORD" in result.stdout
    # once there, never touched again
    before = {env_file: (project / env_file).read_bytes() for env_file in ENV_FILES}
    again = fake_docker.run("scripts/env-files")
    assert again.returncode == 0 and "::add-mask::" not in again.stdout
    assert again.stdout.splitlines() == [f"{env_file}: exists, left as it is" for env_file in ENV_FILES]
    assert {env_file: (project / env_file).read_bytes() for env_file in ENV_FILES} == before
    # outside GitHub Actions nothing is printed that holds a secret
    (project / "db/.env").unlink()
    quiet = fake_docker.run("scripts/env-files")
    assert "::add-mask::" not in quiet.stdout and dotenv.load(project / "db/.env")["POSTGRES_PASSWORD"] not in quiet.stdout
    assert quiet.stderr == ""
    # a new db/.env next to a database that already ran: its passwords are the first start's
    (project / "db/.env").unlink()
    warned = fake_docker.run("scripts/env-files", FAKE_VOLUME="present")
    assert warned.returncode == 0 and "Warning: the volume giga_db_data_16 exists: the database keeps the passwords " \
        "of its first start, not these." in warned.stderr, warned.stderr


def test_env_files_keeps_the_shared_password_of_the_file_that_exists(fake_docker):
    """DB_PASSWORD (back/.env) is APP_DB_PASSWORD (db/.env): a new file takes
    it from the other, as written (compose's quoting kept)."""
    project = fake_docker.project
    chosen = 'DB_PASSWORD="o\\"brien $$ \\\\ #1"'  # compose's quoting of: o"brien $ \ #1
    back = (project / "back/.env").read_text()
    (project / "back/.env").write_text(re.sub(r"^DB_PASSWORD=.*$", lambda _: chosen, back, flags=re.M))
    (project / "db/.env").unlink()
    result = fake_docker.run("scripts/env-files")
    assert result.returncode == 0, result.stderr
    assert "APP_DB_PASSWORD as in back/.env" in result.stdout
    assert dotenv.load(project / "db/.env")["APP_DB_PASSWORD"] == dotenv.load(project / "back/.env")["DB_PASSWORD"] \
        == 'o"brien $ \\ #1'
    (project / "back/.env").unlink()
    result = fake_docker.run("scripts/env-files")
    assert "DB_PASSWORD as in db/.env" in result.stdout
    assert dotenv.load(project / "back/.env")["DB_PASSWORD"] == 'o"brien $ \\ #1'
