"""The server db/ configures: postgresql.conf (durable, tuned from
db_memory_mb, checkpoints spaced) and pg_hba.conf (no trusted TCP, only the
app and monitoring roles from the network) as rendered, then (full tier) in
force on a real PostgreSQL of the Dockerfile's major, for every offered
major, with the least-privilege roles init/ made, the statistics they read
and production's documented hardening.
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from harness import compose, make
from harness.answers import POSTGRES_VERSIONS, recorded
from harness.pg_clients import admin_query, app_query
from harness.pg_container import conf_settings, dockerfile_major
from harness.postgres import PostgresServer, start_project_db
from harness.render import example_answers


# ===========================================================================
# Quick tier
# ===========================================================================
def test_postgresql_conf_essentials(versioned_project):
    a = recorded(versioned_project)
    conf = conf_settings(versioned_project / "db/postgresql.conf")
    assert conf["listen_addresses"] == "*"
    assert conf["port"] == str(a["db_port"])
    assert conf["password_encryption"] == "scram-sha-256"
    assert conf["hba_file"] == "/etc/postgresql/pg_hba.conf"
    assert (conf["fsync"], conf["full_page_writes"], conf["synchronous_commit"]) == ("on", "on", "on")
    assert "pg_stat_statements" in conf["shared_preload_libraries"]
    assert conf["log_destination"] == "stderr" and conf["logging_collector"] == "off"
    assert "log_min_duration_statement" in conf
    assert conf["timezone"] == a["timezone"]


@pytest.mark.parametrize("memory_mb, expected", [
    # RAM, shared_buffers, effective_cache_size, maintenance_work_mem, work_mem, wal_buffers
    (256, ("64MB", "192MB", "16MB", "4MB", "1966kB")),
    (1024, ("256MB", "768MB", "64MB", "4MB", "7864kB")),
    (8192, ("2GB", "6GB", "512MB", "19418kB", "16MB")),
    (65536, ("16GB", "48GB", "2GB", "155344kB", "16MB")),
])
def test_postgresql_conf_is_tuned_from_the_memory_limit(render_jinja, memory_mb, expected):
    conf = conf_settings(render_jinja({"db_memory_mb": memory_mb}) / "db/postgresql.conf")
    assert (conf["shared_buffers"], conf["effective_cache_size"], conf["maintenance_work_mem"],
            conf["work_mem"], conf["wal_buffers"]) == expected


@pytest.mark.parametrize("memory_mb", [256, 1024, 65536])
def test_checkpoints_are_spaced_for_writes_with_durability_on(render_jinja, memory_mb):
    # Measured by tests/benchmarks/bench_postgresql_conf.py (docs/benchmarks.md):
    # fewer checkpoints, fewer full-page images in the WAL; durability untouched.
    conf = conf_settings(render_jinja({"db_memory_mb": memory_mb}) / "db/postgresql.conf")
    assert (conf["checkpoint_timeout"], conf["max_wal_size"], conf["min_wal_size"],
            conf["checkpoint_completion_target"]) == ("15min", "4GB", "1GB", "0.9")
    assert (conf["fsync"], conf["full_page_writes"], conf["synchronous_commit"]) == ("on", "on", "on")


def hba_lines(project: Path) -> list[list[str]]:
    return [line.split() for line in (project / "db/pg_hba.conf").read_text().splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_pg_hba_never_trusts_tcp_and_ends_in_reject(versioned_project):
    a = recorded(versioned_project)
    lines = hba_lines(versioned_project)
    tcp = [line for line in lines if line[0].startswith("host")]
    assert all(line[-1] in {"scram-sha-256", "reject"} for line in tcp), tcp
    assert [line[0] for line in lines if line[-1] == "trust"] == ["local"]
    assert tcp[-2:] == [["host", "all", "all", "0.0.0.0/0", "reject"], ["host", "all", "all", "::/0", "reject"]]
    network_rules = [line for line in tcp if line[3] == "samenet"]
    assert network_rules == [["host", f"{a['db_name']},test_{a['db_name']},postgres", a["db_user"],
                              "samenet", "scram-sha-256"],
                             ["host", a["db_name"], compose.environments(versioned_project)["db"]["MONITOR_DB_USER"],
                              "samenet", "scram-sha-256"]]


# ===========================================================================
# Full tier
# ===========================================================================
EXAMPLE_PROJECTS = {"giga": example_answers("giga"), "acme": example_answers("acme-pg18")}


# Every major copier.yml offers: the examples' own, and a project for each
# other major, every second one with a small memory limit and another zone.
SMALL = {"db_memory_mb": 512, "timezone": "Europe/Madrid"}


_OTHER_MAJORS = [v for v in POSTGRES_VERSIONS if v not in {int(a["postgres_version"]) for a in EXAMPLE_PROJECTS.values()}]


PROJECTS = dict(sorted(
    [(f"pg{a['postgres_version']}-{name}", a) for name, a in EXAMPLE_PROJECTS.items()]
    + [(f"pg{v}-512mb" if i % 2 else f"pg{v}", {"postgres_version": v, **(SMALL if i % 2 else {})})
       for i, v in enumerate(_OTHER_MAJORS)],
    key=lambda item: int(item[1]["postgres_version"])))


@pytest.fixture(scope="module", params=list(PROJECTS), ids=list(PROJECTS))
def db(request, render) -> PostgresServer:
    project = render(PROJECTS[request.param])
    server = start_project_db(project)
    server.project = project
    yield server
    server.destroy()


@pytest.mark.full
def test_server_runs_the_dockerfiles_major(db):
    (version,), = admin_query(db, "SHOW server_version_num")
    assert int(version) // 10000 == dockerfile_major(db.project / "db") == db.major


@pytest.mark.full
def test_configuration_files_parse_without_errors(db):
    # The harness overrides these three on the command line (the container
    # uses the file's values), so the file's lines are reported as not applied.
    overridden = ["listen_addresses", "port", "hba_file"]
    assert admin_query(db, "SELECT sourceline, name, error FROM pg_file_settings"
                           " WHERE error IS NOT NULL AND name <> ALL(%s)", [overridden]) == []
    assert admin_query(db, "SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL") == []
    # the rendered files are the ones in force
    (hba_rules,), = admin_query(db, "SELECT count(*) FROM pg_hba_file_rules")
    assert hba_rules == len(hba_lines(db.project))


@pytest.mark.full
def test_durability_is_on(db):
    for setting in ("fsync", "full_page_writes", "synchronous_commit", "data_checksums"):
        (value,), = admin_query(db, f"SHOW {setting}")
        assert value == "on", setting


@pytest.mark.full
def test_checkpoint_spacing_is_in_force(db):
    settings = dict(admin_query(db, "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN"
                                    " ('checkpoint_timeout', 'max_wal_size', 'min_wal_size')"))
    assert settings == {"checkpoint_timeout": "900s", "max_wal_size": "4096MB", "min_wal_size": "1024MB"}


@pytest.mark.full
def test_memory_settings_follow_db_memory_mb(db):
    memory_mb = recorded(db.project)["db_memory_mb"]
    (shared_buffers_bytes,), = admin_query(
        db, "SELECT setting::bigint * pg_size_bytes(unit) FROM pg_settings WHERE name = 'shared_buffers'")
    assert shared_buffers_bytes == memory_mb * 1024 * 1024 // 4
    (cache_bytes,), = admin_query(
        db, "SELECT setting::bigint * pg_size_bytes(unit) FROM pg_settings WHERE name = 'effective_cache_size'")
    assert cache_bytes == memory_mb * 1024 * 1024 * 3 // 4


@pytest.mark.full
def test_timezone_and_logging(db):
    timezone = re.search(r"^timezone = '(.+)'", (db.project / "db/postgresql.conf").read_text(), re.M).group(1)
    assert admin_query(db, "SHOW timezone") == [(timezone,)]
    assert admin_query(db, "SHOW log_min_duration_statement") == [("500ms",)]
    assert admin_query(db, "SHOW password_encryption") == [("scram-sha-256",)]


@pytest.mark.full
def test_app_role_logs_in_over_tcp_with_scram(db):
    (user, via_tcp), = app_query(db, "SELECT current_user, inet_client_addr() IS NOT NULL")
    assert (user, via_tcp) == (db.app["user"], True)
    (stored,), = admin_query(db, "SELECT rolpassword FROM pg_authid WHERE rolname = %s", [db.app["user"]])
    assert stored.startswith("SCRAM-SHA-256$")


@pytest.mark.full
def test_wrong_password_is_refused(db):
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        db.connect(db.app["user"], db.app["password"] + "x", db.app["dbname"])


@pytest.mark.full
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


@pytest.mark.full
def test_public_has_no_rights_on_the_app_database(db):
    (public_connect, public_create), = admin_query(
        db, "SELECT has_database_privilege('public', %s, 'CONNECT'),"
            " has_schema_privilege('public', 'public', 'CREATE')", [db.app["dbname"]], dbname=db.app["dbname"])
    assert (public_connect, public_create) == (False, False)


@pytest.mark.full
def test_app_role_can_create_tables_for_migrations(db):
    app_query(db, "CREATE TABLE migration_probe (id int); DROP TABLE migration_probe")


@pytest.mark.full
def test_pg_stat_statements_answers(db):
    app_query(db, "SELECT 1")
    (calls,), = app_query(db, "SELECT count(*) FROM pg_stat_statements")
    assert calls >= 1
    (extension,), = app_query(db, "SELECT extname FROM pg_extension WHERE extname = 'pg_stat_statements'")
    assert extension == "pg_stat_statements"


@pytest.mark.full
def test_network_admits_only_the_app_role_to_its_databases(db):
    """pg_hba.conf's samenet line, from an address on the server's subnet (the Docker network)."""
    assert db.address != "127.0.0.1"
    app_query(db, "SELECT 1")
    db.query("SELECT 1", user=db.app["user"], password=db.app["password"], dbname="postgres")
    with pytest.raises(psycopg.OperationalError, match="rejects connection"):
        db.connect(db.admin["user"], db.admin["password"], db.app["dbname"])
    with pytest.raises(psycopg.OperationalError, match="rejects connection"):
        db.connect(db.app["user"], db.app["password"], "template1")


@pytest.mark.full
def test_monitoring_role_reads_statistics_over_the_network_and_nothing_else(db):
    """The exporter's role: pg_monitor, through pg_hba.conf's samenet line, to the app database only."""
    monitor = {"user": db.env["MONITOR_DB_USER"], "password": db.env["MONITOR_DB_PASSWORD"], "dbname": db.app["dbname"]}
    (user, via_tcp), = db.query("SELECT current_user, inet_client_addr() IS NOT NULL", **monitor)
    assert (user, via_tcp) == (monitor["user"], True) and db.address != "127.0.0.1"
    (attributes, member_of), = admin_query(
        db, "SELECT ARRAY[rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls],"
            " ARRAY(SELECT roleid::regrole::text FROM pg_auth_members WHERE member = r.oid)"
            " FROM pg_roles r WHERE rolname = %s", [monitor["user"]])
    assert attributes == [False] * 5 and member_of == ["pg_monitor"]
    # what the exporter reads: every role's statements, texts included, and database statistics
    app_query(db, "DROP TABLE IF EXISTS monitor_probe; CREATE TABLE monitor_probe (secret text);"
                  " INSERT INTO monitor_probe VALUES ('payroll')")
    (statements,), = db.query("SELECT count(*) FROM pg_stat_statements WHERE userid = %s::regrole"
                              " AND query LIKE '%%monitor_probe%%'", params=[db.app["user"]], **monitor)
    assert statements >= 1, "pg_read_all_stats: the app's query texts are visible"
    (commits,), = db.query("SELECT xact_commit FROM pg_stat_database WHERE datname = %s",
                           params=[db.app["dbname"]], **monitor)
    assert commits > 0
    # ...and nothing else: no data, nothing created, no other database
    for sql in ("SELECT * FROM monitor_probe", "CREATE TABLE public.monitor_own (id int)",
                "CREATE TEMP TABLE monitor_temp (id int)", "CREATE SCHEMA monitor_own", "CREATE ROLE monitor_intruder",
                "CREATE DATABASE monitor_own", "INSERT INTO monitor_probe VALUES ('x')"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            db.query(sql, **monitor)
    for dbname in ("postgres", "template1", f"test_{db.app['dbname']}"):
        with pytest.raises(psycopg.OperationalError, match="rejects connection"):
            db.connect(monitor["user"], monitor["password"], dbname)
    app_query(db, "DROP TABLE monitor_probe")


@pytest.mark.full
def test_documents_docker_exec_psql_works_over_the_socket(db):
    """`docker exec <slug>_db_dev psql -U <db_user> -d <db_name> -c "\\dt"`: no password prompt."""
    db.query("CREATE TABLE IF NOT EXISTS doc_probe (id int)", **db.app)
    output = db.psql_socket("\\dt", user=db.app["user"], dbname=db.app["dbname"])
    assert "doc_probe" in output
    db.query("DROP TABLE doc_probe", **db.app)


@pytest.mark.full
def test_make_db_stats_shows_the_apps_top_queries(db):
    """`make db-stats` runs psql in the DB container as the app role: its
    query reads pg_stat_statements and ranks the app's own queries."""
    (*docker_exec, psql, user_flag, user, db_flag, dbname, c_flag, sql), = make.commands(db.project, "db-stats")
    assert (psql, user_flag, db_flag, c_flag) == ("psql", "-U", "-d", "-c")
    assert (user, dbname) == (db.app["user"], db.app["dbname"])
    # Only this test's queries are ranked: other tests share the server.
    admin_query(db, "SELECT pg_stat_statements_reset()", dbname=db.app["dbname"])
    for _ in range(3):
        db.query("SELECT count(*) AS db_stats_probe FROM pg_class", **db.app)
    output = db.psql_socket(sql, user=user, dbname=dbname)
    header, *rows = [line for line in output.splitlines() if "|" in line]
    assert [column.strip() for column in header.split("|")] == ["calls", "total_ms", "mean_ms", "rows", "query"]
    assert any("db_stats_probe" in row for row in rows), output


# ---------------------------------------------------------------------------
# Development needs CREATEDB and the test/maintenance databases; production can drop them
# ---------------------------------------------------------------------------
@pytest.mark.full
def test_app_role_creates_and_drops_the_test_database_like_manage_py_test(db):
    """What `manage.py test` does: from the network, connect to the maintenance
    database `postgres`, create test_<db>, use it, drop it. No superuser needed."""
    test_db = f"test_{db.app['dbname']}"
    db.query(f'CREATE DATABASE "{test_db}"', user=db.app["user"], password=db.app["password"], dbname="postgres")
    try:
        assert db.query("SELECT current_database(), current_setting('is_superuser')",
                        user=db.app["user"], password=db.app["password"], dbname=test_db) == [(test_db, "off")]
    finally:
        db.query(f'DROP DATABASE "{test_db}"', user=db.app["user"], password=db.app["password"], dbname="postgres")


def production_steps(project) -> tuple[str, str]:
    """The SQL and the pg_hba.conf line db/README.md gives for production."""
    readme = (project / "db/README.md").read_text()
    section = readme.split("## Development and production", 1)[1]
    sql = re.search(r"```sql\n(.*?)```", section, re.S).group(1)
    hba = re.search(r"```\n(host .*?)\n```", section, re.S).group(1)
    return sql, hba


@pytest.mark.full
def test_documented_production_steps_drop_createdb_and_the_extra_databases(render, fresh_db_server):
    project = render(example_answers("acme-pg18"))
    server = fresh_db_server(project)
    sql, hba_line = production_steps(project)
    app = server.app
    server.psql_socket(sql, user=server.admin["user"], dbname=server.admin["dbname"])
    hba = server.hba_file.read_text()
    development_line = next(line for line in hba.splitlines() if "samenet" in line and not line.startswith("#"))
    server.hba_file.write_text(hba.replace(development_line, hba_line))
    server.psql_socket("SELECT pg_reload_conf()", user=server.admin["user"], dbname=server.admin["dbname"])
    assert server.query("SELECT error FROM pg_hba_file_rules WHERE error IS NOT NULL", host="127.0.0.1",
                        **server.admin) == []
    # the application still logs in and migrates ...
    server.query("CREATE TABLE after_hardening (id int); DROP TABLE after_hardening", **app)
    (createdb, superuser), = server.query("SELECT rolcreatedb, rolsuper FROM pg_roles WHERE rolname = current_user",
                                          **app)
    assert (createdb, superuser) == (False, False)
    # ... but creates no database, and reaches no database but its own from the network
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        server.query("CREATE DATABASE intruder", **app)
    for other in ("postgres", f"test_{app['dbname']}"):
        with pytest.raises(psycopg.OperationalError, match="rejects connection"):
            server.connect(app["user"], app["password"], other)
