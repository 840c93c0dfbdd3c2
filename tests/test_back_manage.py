"""Full tier: the rendered backend's management commands, run natively as its
container would (harness/backend.py) against a real PostgreSQL started from
the rendered db/ (harness/postgres.py), reaching it by the DB service name:
`check` and its refusals, migrations into the isolated database,
docs/architecture.md's commands literally, `verify_architecture`, the probe
`make verify` writes, and other answers (awkward passwords, another project).
"""

from __future__ import annotations

import json
import re

import pytest

from harness.answers import recorded as answers
from harness.backend import Backend
from harness.inputs import AWKWARD_PASSWORDS
from harness.render import example_answers
from harness.back_project import DJANGO_TABLES, app_query, create_user, production_env, sqlite_files


@pytest.mark.full
def test_manage_py_check(giga_backend):
    result = giga_backend.manage("check")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    # the document's "Test de conectividad completa"
    result = giga_backend.manage("check", "--database=default")
    assert result.returncode == 0, result.stderr


@pytest.mark.full
def test_missing_db_password_fails_fast_naming_it(giga_backend):
    result = giga_backend.manage("check", env={"DB_PASSWORD": ""})
    assert result.returncode == 1
    assert "DB_PASSWORD" in result.stderr.strip().splitlines()[-1]


@pytest.mark.full
def test_system_check_refuses_another_engine(giga_backend, tmp_path):
    slug = answers(giga_backend.project)["project_slug"]
    # the engine comes from the environment: the settings source does not name it, so only E001 applies
    # (a whole new entry: Django's own model checks open the other engine, and PostgreSQL's OPTIONS break it)
    (tmp_path / "other_settings.py").write_text(
        f"import os\nfrom {slug}.settings import *\n"
        "DATABASES['default'] = {'ENGINE': os.environ['OTHER_ENGINE'], 'NAME': ':memory:'}\n")
    result = giga_backend.manage("check", env={"DJANGO_SETTINGS_MODULE": "other_settings",
                                               "OTHER_ENGINE": "django.db.backends.sqlite3",
                                               "PYTHONPATH": f"{tmp_path}:{giga_backend.dir}"})
    assert result.returncode == 1
    assert "architecture.E001" in result.stderr and "architecture.E002" not in result.stderr
    (tmp_path / "other_settings.py").write_text(f"from {slug}.settings import *  # no fallback to SQLite\n")
    result = giga_backend.manage("check", env={"DJANGO_SETTINGS_MODULE": "other_settings",
                                               "PYTHONPATH": f"{tmp_path}:{giga_backend.dir}"})
    assert result.returncode == 1 and "architecture.E002" in result.stderr


@pytest.mark.full
def test_no_file_database_after_the_flows(giga_backend):
    """migrate, a query through the ORM and verify_architecture (which writes and rolls back) leave
    no SQLite file in back/."""
    for command in (("migrate", "--noinput"), ("verify_architecture",),
                    ("shell", "-c", "from personas.models import Usuario; print(Usuario.objects.count())")):
        result = giga_backend.manage(*command)
        assert result.returncode == 0, result.stdout + result.stderr
    assert sqlite_files(giga_backend.project) == []


@pytest.mark.full
def test_migrations_create_djangos_tables_in_the_isolated_db(giga_backend, giga_db):
    a = answers(giga_backend.project)
    result = giga_backend.manage("migrate", "--noinput")
    assert result.returncode == 0, result.stderr
    assert giga_backend.manage("makemigrations", "--check", "--dry-run").returncode == 0, "model changes without a migration"
    # docker exec giga_db_dev psql -U giga_user -d giga -c "\dt"
    listing = giga_db.psql_socket(r"\dt", user=a["db_user"], dbname=a["db_name"])
    tables = set(re.findall(r"^\s*public\s*\|\s*(\w+)\s*\|\s*table\s*\|\s*(\w+)", listing, re.M))
    assert {name for name, _ in tables} >= DJANGO_TABLES, listing
    assert {owner for _, owner in tables} == {a["db_user"]}


@pytest.mark.full
def test_the_documents_create_user_flow(giga_backend, giga_db):
    a = answers(giga_backend.project)
    # docker exec giga_backend_dev python manage.py shell -c "..." (the document's text, verbatim)
    result = giga_backend.manage("shell", "-c", """
from personas.models import Usuario
u = Usuario.objects.create_user('test', 'test@test.com', 'password123')
print(f'Usuario creado: {u.id}')
""")
    assert result.returncode == 0, result.stderr
    user_id = int(re.search(r"Usuario creado: (\d+)", result.stdout).group(1))
    # docker exec giga_db_dev psql -U giga_user -d giga -c "SELECT ..."
    rows = giga_db.psql_socket("SELECT id, username, email FROM personas_usuario WHERE username='test';",
                               user=a["db_user"], dbname=a["db_name"])
    assert re.search(rf"^\s*{user_id}\s*\|\s*test\s*\|\s*test@test\.com\s*$", rows, re.M), rows
    # the one-line form of the issue
    result = giga_backend.manage("shell", "-c", "from personas.models import Usuario; "
                                 "print(Usuario.objects.get(username='test').id)")
    assert result.stdout.split()[-1] == str(user_id)
    # Comandos de Verificación Final, 3 and 4
    result = giga_backend.manage("shell", "-c", """
from personas.models import Usuario
count = Usuario.objects.count()
print(f'✅ BD funcional: {count} usuarios en sistema')
""")
    count = int(re.search(r"BD funcional: (\d+) usuarios", result.stdout).group(1))
    summary = giga_db.psql_socket(
        "SELECT 'BD aislada funcionando: ' || COUNT(*) || ' usuarios' FROM personas_usuario;",
        user=a["db_user"], dbname=a["db_name"])
    assert f"BD aislada funcionando: {count} usuarios" in summary
    # the password is hashed in the isolated database
    stored = giga_db.psql_socket("SELECT password FROM personas_usuario WHERE username='test';",
                                 user=a["db_user"], dbname=a["db_name"])
    assert "pbkdf2_sha256$" in stored and "password123" not in stored


@pytest.mark.full
def test_dbshell_reaches_the_isolated_db(giga_backend):
    a = answers(giga_backend.project)
    result = giga_backend.manage("dbshell", "--", "-At", "-c",
                                 "SELECT current_user, current_database(), inet_server_addr() IS NOT NULL")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{a['db_user']}|{a['db_name']}|t"


@pytest.mark.full
def test_verify_architecture_passes(giga_backend):
    result = giga_backend.manage("verify_architecture")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = [line for line in result.stdout.splitlines() if line[:1] in "✅❌"]
    assert len(lines) == 9 and all(line.startswith("✅") for line in lines), result.stdout
    db_service = answers(giga_backend.project)["db_service"]
    assert f"✅ HOST is the isolated database service '{db_service}'" in result.stdout


@pytest.mark.full
def test_verify_architecture_fails_on_a_local_database(giga_backend, giga_db, tmp_path):
    (tmp_path / "PG_VERSION").write_text("16\n")
    result = giga_backend.manage("verify_architecture", env={"PGDATA": str(tmp_path)})
    assert result.returncode == 1
    assert f"❌ No PostgreSQL data directory on the backend side: {tmp_path}" in result.stdout
    # DB_HOST as an address instead of the service name
    result = giga_backend.manage("verify_architecture", env={"DB_HOST": giga_db.address})
    assert result.returncode == 1
    assert "❌ HOST is the isolated database service" in result.stdout
    assert "✅ Connection to the isolated database" in result.stdout


@pytest.mark.full
def test_awkward_passwords_connect_end_to_end(render, fresh_db_server, backend_venv):
    project = render(AWKWARD_PASSWORDS)
    db = fresh_db_server(project)
    backend = Backend(project, db, backend_venv)
    result = backend.manage("wait_for_db", "--timeout", "10")
    assert result.returncode == 0, result.stderr
    result = backend.manage("shell", "-c", "from django.conf import settings; import json; "
                            "print(json.dumps([settings.DATABASES['default']['PASSWORD'], settings.SECRET_KEY]))")
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [AWKWARD_PASSWORDS["db_password"],
                                                                   AWKWARD_PASSWORDS["django_secret_key"]]


@pytest.mark.full
def test_another_project_has_nothing_hard_wired(render, fresh_db_server, backend_venv):
    project = render(example_answers("acme-pg18"))
    db = fresh_db_server(project)
    backend = Backend(project, db, backend_venv)
    backend.manage("migrate", "--noinput", check=True)
    result = backend.manage("verify_architecture")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "'acme-ops-db'" in result.stdout
    result = backend.manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(project))
    assert result.returncode == 0, result.stdout + result.stderr
    result = backend.manage("shell", "-c", "from django.conf import settings; "
                            "print(settings.LANGUAGE_CODE, settings.TIME_ZONE)")
    assert result.stdout.split()[-2:] == ["es-ar", "America/Argentina/Buenos_Aires"]


def probe_users(db) -> list[tuple]:
    return db.query("SELECT username FROM personas_usuario WHERE username LIKE 'verify-probe-%'", **db.app)


@pytest.mark.full
def test_verify_probe_deletes_only_the_probes_it_creates(giga_backend, giga_db):
    """The probe user make verify writes can never log in, and its delete can
    never remove anyone else."""
    create_user(giga_backend, "probe-bystander", "a-Strong-passw0rd!")
    for name in ("probe-bystander", "verify-probe-", "verify-probe-0123456789abc", "verify-probe-%"):
        result = giga_backend.manage("verify_probe", "delete", name)
        assert result.returncode == 1 and "takes a probe's name" in result.stderr, (name, result.stderr)
    assert app_query(giga_db, "SELECT count(*) FROM personas_usuario WHERE username = 'probe-bystander'") == [(1,)]
    probe = giga_backend.manage("verify_probe", "create", check=True).stdout.strip()
    (password,), = app_query(giga_db, "SELECT password FROM personas_usuario WHERE username = %s", (probe,))
    assert password.startswith("!"), "an unusable password"
    assert giga_backend.manage("verify_probe", "delete", probe, check=True).stdout.strip() == f"deleted {probe}"
    assert probe_users(giga_db) == []
    assert giga_backend.manage("verify_probe", "delete", probe).returncode == 1, "gone"
