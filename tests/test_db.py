"""Full tier: the rendered db/ runs a real PostgreSQL of the same major.

Each server uses the rendered postgresql.conf and pg_hba.conf and ran the
rendered init/ like the official entrypoint (see harness.postgres).
"""

from __future__ import annotations

import re

import psycopg
import pytest
import yaml

from harness.inputs import AWKWARD_PASSWORDS
from harness.postgres import PostgresServer, dockerfile_major, start_project_db
from harness.render import REPO, copier_cli, data_args, example_answers

pytestmark = pytest.mark.full

PROJECTS = {
    "pg15": {"postgres_version": 15},
    "pg16-giga": example_answers("giga"),
    "pg17-512mb": {"postgres_version": 17, "db_memory_mb": 512, "timezone": "Europe/Madrid"},
    "pg18-acme": example_answers("acme-pg18"),
}


@pytest.fixture(scope="module", params=list(PROJECTS), ids=list(PROJECTS))
def db(request, render) -> PostgresServer:
    project = render(PROJECTS[request.param])
    server = start_project_db(project)
    server.project = project
    yield server
    server.destroy()


def admin_query(db: PostgresServer, sql: str, params=None, dbname: str | None = None):
    """As the superuser, over the container-local loopback (allowed by pg_hba.conf)."""
    return db.query(sql, params=params, host="127.0.0.1",
                    **{**db.admin, **({"dbname": dbname} if dbname else {})})


def app_query(db: PostgresServer, sql: str, params=None):
    """As the application role, over the network address, like the backend."""
    return db.query(sql, params=params, **db.app)


def test_server_runs_the_dockerfiles_major(db):
    (version,), = admin_query(db, "SHOW server_version_num")
    assert int(version) // 10000 == dockerfile_major(db.project / "db") == db.major


def test_configuration_files_parse_without_errors(db):
    # The harness overrides these three on the command line (the container
    # uses the file's values), so the file's lines are reported as not applied.
    overridden = ["listen_addresses", "port", "hba_file"]
    assert admin_query(db, "SELECT sourceline, name, error FROM pg_file_settings"
                           " WHERE error IS NOT NULL AND name <> ALL(%s)", [overridden]) == []
    assert admin_query(db, "SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL") == []
    # the rendered files are the ones in force
    (hba_rules,), = admin_query(db, "SELECT count(*) FROM pg_hba_file_rules")
    assert hba_rules == 6


def test_durability_is_on(db):
    for setting in ("fsync", "full_page_writes", "synchronous_commit", "data_checksums"):
        (value,), = admin_query(db, f"SHOW {setting}")
        assert value == "on", setting


def test_memory_settings_follow_db_memory_mb(db):
    memory_mb = int(yaml.safe_load((db.project / ".copier-answers.yml").read_text())["db_memory_mb"])
    (shared_buffers_bytes,), = admin_query(
        db, "SELECT setting::bigint * pg_size_bytes(unit) FROM pg_settings WHERE name = 'shared_buffers'")
    assert shared_buffers_bytes == memory_mb * 1024 * 1024 // 4
    (cache_bytes,), = admin_query(
        db, "SELECT setting::bigint * pg_size_bytes(unit) FROM pg_settings WHERE name = 'effective_cache_size'")
    assert cache_bytes == memory_mb * 1024 * 1024 * 3 // 4


def test_timezone_and_logging(db):
    timezone = re.search(r"^timezone = '(.+)'", (db.project / "db/postgresql.conf").read_text(), re.M).group(1)
    assert admin_query(db, "SHOW timezone") == [(timezone,)]
    assert admin_query(db, "SHOW log_min_duration_statement") == [("500ms",)]
    assert admin_query(db, "SHOW password_encryption") == [("scram-sha-256",)]


def test_app_role_logs_in_over_tcp_with_scram(db):
    (user, via_tcp), = app_query(db, "SELECT current_user, inet_client_addr() IS NOT NULL")
    assert (user, via_tcp) == (db.app["user"], True)
    (stored,), = admin_query(db, "SELECT rolpassword FROM pg_authid WHERE rolname = %s", [db.app["user"]])
    assert stored.startswith("SCRAM-SHA-256$")


def test_wrong_password_is_refused(db):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        db.connect(db.app["user"], db.app["password"] + "x", db.app["dbname"])


def test_app_role_is_least_privilege_and_owns_the_database(db):
    (superuser, createrole, createdb, login), = admin_query(
        db, "SELECT rolsuper, rolcreaterole, rolcreatedb, rolcanlogin FROM pg_roles WHERE rolname = %s",
        [db.app["user"]])
    assert (superuser, createrole, login) == (False, False, True)
    assert createdb, "manage.py test needs CREATEDB"
    (owner,), = admin_query(db, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                            [db.app["dbname"]])
    assert owner == db.app["user"]
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        app_query(db, "CREATE ROLE intruder")


def test_public_has_no_rights_on_the_app_database(db):
    (public_connect, public_create), = admin_query(
        db, "SELECT has_database_privilege('public', %s, 'CONNECT'),"
            " has_schema_privilege('public', 'public', 'CREATE')", [db.app["dbname"]], dbname=db.app["dbname"])
    assert (public_connect, public_create) == (False, False)


def test_app_role_can_create_tables_for_migrations(db):
    app_query(db, "CREATE TABLE migration_probe (id int); DROP TABLE migration_probe")


def test_pg_stat_statements_answers(db):
    app_query(db, "SELECT 1")
    (calls,), = app_query(db, "SELECT count(*) FROM pg_stat_statements")
    assert calls >= 1
    (extension,), = app_query(db, "SELECT extname FROM pg_extension WHERE extname = 'pg_stat_statements'")
    assert extension == "pg_stat_statements"


def test_network_admits_only_the_app_role_to_its_databases(db):
    """pg_hba.conf's samenet line, from an address on the server's subnet (the Docker network)."""
    assert db.address != "127.0.0.1"
    app_query(db, "SELECT 1")
    db.query("SELECT 1", user=db.app["user"], password=db.app["password"], dbname="postgres")
    with pytest.raises(psycopg.OperationalError, match="rejects connection"):
        db.connect(db.admin["user"], db.admin["password"], db.app["dbname"])
    with pytest.raises(psycopg.OperationalError, match="rejects connection"):
        db.connect(db.app["user"], db.app["password"], "template1")


def test_documents_docker_exec_psql_works_over_the_socket(db):
    """`docker exec <slug>_db_dev psql -U <db_user> -d <db_name> -c "\\dt"`: no password prompt."""
    db.query("CREATE TABLE IF NOT EXISTS doc_probe (id int)", **db.app)
    output = db.psql_socket("\\dt", user=db.app["user"], dbname=db.app["dbname"])
    assert "doc_probe" in output
    db.query("DROP TABLE doc_probe", **db.app)


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
    finally:
        server.destroy()
