"""The first start and the healthcheck: init/ hard-codes no credential, keeps
every secret off command lines and lets the app role log in only after its
last script; the compose healthcheck is a real login as the app role. Full
tier, replaying the official entrypoint (harness.pg_entrypoint): any
printable password works end to end, strace sees no secret in any program's
arguments, and the healthcheck stays unhealthy on a half-initialised database.
"""

from __future__ import annotations

import os
import re
import stat

import psycopg
import pytest

from harness import compose
from harness.answers import recorded, secrets as secrets_of
from harness.inputs import AWKWARD_PASSWORDS
from harness.net import free_port
from harness.pg_clients import resolved_environment
from harness.postgres import PostgresServer, start_project_db
from harness.render import REPO, copier_cli, data_args


# ===========================================================================
# Quick tier
# ===========================================================================
def test_init_scripts_hard_code_no_credentials(versioned_project):
    a = recorded(versioned_project)
    secrets = secrets_of(versioned_project).values()
    for script in (versioned_project / "db/init").iterdir():
        text = script.read_text()
        assert a["db_user"] not in text and a["db_name"] not in text, script
        assert not any(s in text for s in secrets), script
    assert os.stat(versioned_project / "db/init/10-app-role.sh").st_mode & stat.S_IXUSR


def test_healthcheck_logs_in_as_the_app_role_with_the_password_in_its_environment(versioned_project):
    a = recorded(versioned_project)
    command = compose.healthcheck_command(compose.db_service(versioned_project)[1])  # raises on a lone $
    assert command[:2] == ["/bin/sh", "-c"]
    script = command[2]
    assert script.startswith('PGPASSWORD="${APP_DB_PASSWORD}" psql '), "the password goes in psql's environment"
    assert '--username="${APP_DB_USER}" --dbname="${POSTGRES_DB}"' in script
    assert f"--host=127.0.0.1 --port={a['db_port']} " in script, "TCP: the init-time server listens on the socket only"
    assert "--no-password" in script and "pg_isready" not in script
    assert re.findall(r"\$\{?(\w+)", script) == ["APP_DB_PASSWORD", "APP_DB_USER", "POSTGRES_DB"]


def test_init_scripts_keep_secrets_off_command_lines(versioned_project):
    """Passwords are read by psql itself (\\getenv); the shell only checks
    whether they are set, with builtins (`:`, `[[`), which start no program."""
    is_set_check = re.compile(r': "\$\{\w+:\?[^}]*\}"|if \[\[ -z \$\{\w+:-\} \]\]; then')
    for script in (versioned_project / "db/init").iterdir():
        for line in script.read_text().splitlines():
            if re.search(r"\$\{?\w*PASSWORD", line):
                assert is_set_check.fullmatch(line), f"{script.name}: {line}"
    for name, variable, password in [("10-app-role.sh", "APP_DB_PASSWORD", "app_password"),
                                     ("30-monitor-role.sh", "MONITOR_DB_PASSWORD", "monitor_password")]:
        role_script = (versioned_project / "db/init" / name).read_text()
        assert f"\\getenv {password} {variable}" in role_script and "<<'SQL'" in role_script, name
        assert f"PASSWORD :'{password}'" in role_script, name


def test_app_role_logs_in_only_after_the_last_init_script(versioned_project):
    scripts = sorted(p.name for p in (versioned_project / "db/init").iterdir())
    assert scripts[-1] == "99-app-login.sql"
    assert re.search(r"CREATE ROLE :\"app_user\" NOLOGIN ", (versioned_project / "db/init/10-app-role.sh").read_text())
    assert 'ALTER ROLE :"app_user" LOGIN;' in (versioned_project / "db/init/99-app-login.sql").read_text()


# ===========================================================================
# Full tier
# ===========================================================================
@pytest.mark.full
def test_awkward_passwords_authenticate_end_to_end(tmp_path):
    """Any printable password: rendered by the CLI, parsed like compose, set by
    initdb and init/, then used to log in over TCP with scram."""
    project = tmp_path / "project"
    result = copier_cli("copy", "--defaults", "--vcs-ref", "HEAD", *data_args(AWKWARD_PASSWORDS),
                        str(REPO), str(project))
    assert result.returncode == 0, result.stderr
    server = start_project_db(project)
    try:
        assert server.app["password"] == AWKWARD_PASSWORDS["db_password"]
        assert server.admin["password"] == AWKWARD_PASSWORDS["db_admin_password"]
        assert server.query("SELECT current_user", **server.app) == [("giga_user",)]
        assert server.query("SELECT current_user", host="127.0.0.1", **server.admin) == [("postgres",)]
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            server.connect(server.app["user"], server.app["password"][:-1], server.app["dbname"])
        # the exporter's password as compose interpolates it from db/.env into DATA_SOURCE_PASS
        _, exporter = compose.profile_services(project)["monitoring"]
        env = resolved_environment(project, exporter)
        assert env["DATA_SOURCE_PASS"] == AWKWARD_PASSWORDS["db_monitor_password"]
        assert server.query("SELECT current_user", user=env["DATA_SOURCE_USER"], password=env["DATA_SOURCE_PASS"],
                            dbname=server.app["dbname"]) == [("giga_monitor",)]
    finally:
        server.destroy()


# ---------------------------------------------------------------------------
# No secret on a command line during the first start
# ---------------------------------------------------------------------------
@pytest.mark.full
@pytest.mark.parametrize("answers", [{}, AWKWARD_PASSWORDS], ids=["random", "awkward"])
def test_no_secret_reaches_a_command_line(render, answers):
    """Every program the first start (initdb, init/) and the healthcheck run,
    recorded by strace with its full argv: no password is among them, yet the
    passwords were set, and the app role logs in with its own over TCP."""
    server = PostgresServer(render(answers) / "db")
    try:
        server.trace_exec()
        server.initialize()
        server.start()
        server.healthcheck()
        command_lines = server.command_lines()
        secrets = [server.env["POSTGRES_PASSWORD"], server.env["APP_DB_PASSWORD"], server.env["MONITOR_DB_PASSWORD"]]
        programs = {line[1].rsplit("/", 1)[-1] for line in command_lines}
        assert {"initdb", "10-app-role.sh", "30-monitor-role.sh", "psql", "sh"} <= programs, \
            "the trace missed the first start"
        leaks = [line for line in command_lines for arg in line for secret in secrets if secret in arg]
        assert leaks == []
        # the observation would see a leak: the same trace, a password on a command line
        server._run(["true", f"--password={secrets[1]}"], traced=True)
        assert any(secrets[1] in arg for line in server.command_lines() for arg in line)
        assert server.query("SELECT current_user", **server.app) == [(server.app["user"],)]
        monitor = {"user": server.env["MONITOR_DB_USER"], "password": server.env["MONITOR_DB_PASSWORD"]}
        assert server.query("SELECT current_user", **monitor, dbname=server.app["dbname"]) == [(monitor["user"],)]
    finally:
        server.destroy()


# ---------------------------------------------------------------------------
# The compose healthcheck: healthy only when the application can log in
# ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def healthcheck_project(render):
    """A project whose db_port is free here, so the rendered healthcheck runs verbatim."""
    return render({"db_port": free_port(), "project_name": "Health"})


@pytest.fixture
def healthcheck_server(healthcheck_project):
    port = recorded(healthcheck_project)["db_port"]
    server = PostgresServer(healthcheck_project / "db", port=port)
    yield server
    server.destroy()


@pytest.mark.full
def test_healthcheck_passes_once_initialised_and_is_a_real_login(healthcheck_server):
    server = healthcheck_server
    server.initialize()
    assert server.healthcheck().returncode != 0, "healthy with no server running"
    server.start()
    result = server.healthcheck()
    assert result.returncode == 0, result.stderr
    # a ready server is not enough: the application's credentials must work
    for wrong in ({"APP_DB_PASSWORD": server.env["APP_DB_PASSWORD"] + "x"},
                  {"APP_DB_USER": server.env["POSTGRES_USER"]},
                  {"POSTGRES_DB": "no_such_database"}):
        result = server.healthcheck(**wrong)
        assert result.returncode != 0, wrong


def _replace(old: str, new: str):
    def breaks(initdb_d):
        script = initdb_d / "10-app-role.sh"
        text = script.read_text()
        assert old in text
        script.write_text(text.replace(old, new, 1))
    return breaks


def _write(name: str, text: str):
    def breaks(initdb_d):
        (initdb_d / name).write_text(text)
        (initdb_d / name).chmod(0o755)  # as the Dockerfile's COPY --chmod=0755
    return breaks


BROKEN_INIT = {
    # the role script stops halfway through its SQL
    "role-sql-fails-halfway": _replace("REVOKE ALL ON SCHEMA", "SELECT no_such_function();\nREVOKE ALL ON SCHEMA"),
    # the role is never created
    "role-never-created": _replace("CREATE ROLE", "-- CREATE ROLE"),
    # the SQL committed, then the shell part fails
    "role-script-fails-after-its-sql": _replace("\nSQL\n", "\nSQL\nfalse\n"),
    # a later script of the image's own
    "extension-script-fails": _write("20-pg-stat-statements.sql", "CREATE EXTENSION no_such_extension;\n"),
    # a script the team adds
    "team-script-fails": _write("50-seed.sql", "INSERT INTO no_such_table VALUES (1);\n"),
}


@pytest.mark.full
@pytest.mark.parametrize("breaks", BROKEN_INIT.values(), ids=BROKEN_INIT.keys())
def test_healthcheck_fails_on_a_half_initialised_database(healthcheck_server, breaks):
    """The image's behaviour: an init script fails, the data directory stays,
    the next start skips initialisation and serves what is there. The
    healthcheck must keep saying unhealthy."""
    server = healthcheck_server
    breaks(server.initdb_d)
    with pytest.raises(RuntimeError, match="exited"):
        server.initialize()
    assert (server.data / "PG_VERSION").exists(), "the entrypoint leaves the data directory behind"
    server.start()
    assert server.query("SELECT 1", host="127.0.0.1", **server.admin) == [(1,)], "the server itself is up"
    result = server.healthcheck()
    assert result.returncode != 0, "a half-initialised database reported healthy"
