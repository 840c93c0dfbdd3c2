"""back/: the Django backend, which has no database of its own.

Quick tier: the rendered files, statically (pins, cross-file agreement, no
file database anywhere); hadolint and shellcheck run over every tier's files
in test_rendering.py.

Full tier (`full`): the rendered backend runs natively as its container
would (harness/backend.py) against a real PostgreSQL started from the
rendered db/ (harness/postgres.py), reaching it by the DB service name.
The commands of docs/architecture.md run literally.
"""

from __future__ import annotations

import json
import os
import py_compile
import re
import shutil
import subprocess
import threading
import time
import tomllib
from pathlib import Path

import pytest
import yaml

from harness.answers import alias as answer_alias, recorded as answers
from harness import compose
from harness.backend import Backend, http, raw_request
from harness.dockerfile import dockerfile_stages
from harness.traffic import Traffic
from harness.python import venv_for
from harness.inputs import AWKWARD_PASSWORDS
from harness.render import example_answers

PRODUCTION_ENV = {
    "DJANGO_ALLOWED_HOSTS": "api.example.com,{alias}",
    "EMAIL_URL": "smtp+tls://mailer:s3cret@smtp.example.com:587",
    "DJANGO_DEBUG": "0",
}
DJANGO_TABLES = {"auth_group", "auth_group_permissions", "auth_permission", "knox_authtoken",
                 "django_admin_log", "django_content_type", "django_migrations", "django_session",
                 "personas_attempt", "personas_usuario", "personas_usuario_groups",
                 "personas_usuario_user_permissions"}


def alias(project: Path) -> str:
    return answer_alias(answers(project), "backend")


def back_files(project: Path) -> list[Path]:
    return sorted(p for p in (project / "back").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and ".pytest_cache" not in p.parts)


def sqlite_files(project: Path) -> list[Path]:
    """Files of back/ that are SQLite databases, by name or by content."""
    found = []
    for path in back_files(project):
        with path.open("rb") as handle:
            if path.suffix in (".sqlite", ".sqlite3", ".db") or handle.read(16) == b"SQLite format 3\0":
                found.append(path)
    return found


# ===========================================================================
# Quick tier
# ===========================================================================
def test_backend_layout(example):
    slug = answers(example)["project_slug"]
    back = example / "back"
    for relative in (f"{slug}/settings.py", f"{slug}/production.py", f"{slug}/urls.py", f"{slug}/wsgi.py",
                     "manage.py", "Dockerfile", "docker-entrypoint.sh", "requirements.txt",
                     "requirements-dev.txt", "pytest.ini", ".env", ".env.example", ".dockerignore",
                     "personas/models.py", "personas/migrations/0001_initial.py",
                     f"{slug}/management/commands/wait_for_db.py",
                     f"{slug}/management/commands/verify_architecture.py"):
        assert (back / relative).is_file(), relative
    assert os.access(back / "docker-entrypoint.sh", os.X_OK)


def test_every_python_file_compiles(example, tmp_path):
    for path in back_files(example):
        if path.suffix == ".py":
            py_compile.compile(str(path), cfile=str(tmp_path / "x.pyc"), doraise=True)


def test_settings_name_only_postgresql_and_back_ships_no_file_database(example):
    package = example / "back" / answers(example)["project_slug"]
    settings = (package / "settings.py").read_text()
    assert re.findall(r'"ENGINE": "([^"]+)"', settings) == ["django.db.backends.postgresql"]
    # what architecture.E002 refuses, in the settings modules the project ships
    for module in ("settings.py", "production.py"):
        assert "sqlite" not in (package / module).read_text().lower(), module
    assert sqlite_files(example) == []


def test_dockerfile_essentials(example):
    text = (example / "back/Dockerfile").read_text()
    stages = dockerfile_stages(example / "back/Dockerfile")
    final = stages[""]
    # an exact Python patch release on a named Debian release: rebuilds change neither
    assert re.search(r"^FROM python:3\.13\.\d+-slim-bookworm AS base$", text, re.M)
    assert final.name == "production" and "dev" in stages
    # non-root, numerically (resolvable without the image's /etc/passwd)
    for stage in (final, stages["dev"]):
        uid = stage.user.split(":")[0]
        assert uid.isdigit() and int(uid) != 0, stage.user
    # the PostgreSQL client only: no server package, no data directory
    assert re.search(r"apt-get install [^\n]*--no-install-recommends postgresql-client\b", text)
    assert not re.search(r"postgresql-\d+\b|postgresql-server|apt-get install[^\n]* postgresql\s", text)
    assert "test ! -e /var/lib/postgresql" in text
    # dependencies are installed before the code is copied (layer cache)
    assert text.index("COPY requirements.txt") < text.index("pip install") < text.index("COPY . .")
    # health check hits /api/health/; entrypoint waits for the DB
    assert final.healthcheck == ["docker-healthcheck"]
    assert final.bin_files["docker-healthcheck"] == "healthcheck.py"
    assert "/api/health/" in (example / "back/healthcheck.py").read_text()
    assert final.entrypoint == ["docker-entrypoint.sh"]
    assert final.bin_files["docker-entrypoint.sh"] == "docker-entrypoint.sh"
    port = str(answers(example)["backend_port"])
    assert final.env["PORT"] == final.env["GRANIAN_PORT"] == port
    assert re.search(rf"^EXPOSE {port}$", text, re.M)
    slug = answers(example)["project_slug"]
    assert final.cmd == ["granian", f"{slug}.wsgi:application"]
    assert final.env["GRANIAN_INTERFACE"] == "wsgi" and final.env["GRANIAN_HOST"] == "0.0.0.0"
    assert final.env["DJANGO_SETTINGS_MODULE"] == f"{slug}.production"


def test_entrypoint_waits_for_the_db_and_migrates_only_on_request(example):
    script = (example / "back/docker-entrypoint.sh").read_text()
    assert "python manage.py wait_for_db" in script
    assert re.search(r'if \[ "\$\{DJANGO_MIGRATE_ON_START:-0\}" = "1" \]; then\s+python manage.py migrate', script)
    assert script.rstrip().endswith('exec "$@"')


def test_dependencies_are_exact_pins(example):
    back = example / "back"
    pins = {}
    for name in ("requirements.txt", "requirements-dev.txt"):
        for line in (back / name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("-r "):
                continue
            match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[a-z,]+\])?==([0-9][0-9A-Za-z.]*)", line)
            assert match, f"{name}: not an exact pin: {line!r}"
            pins[match.group(1).lower()] = (match.group(2), match.group(3))
    assert pins["django"][1].startswith("6.1.")
    assert pins["psycopg"] == ("[binary,pool]", pins["psycopg"][1]) and pins["psycopg"][1].startswith("3.")
    for package in ("djangorestframework", "django-rest-knox", "drf-spectacular", "environs", "granian", "whitenoise",
                    "psycopg-binary", "psycopg-pool", "pytest", "pytest-django"):
        assert package in pins, package
    runtime = (back / "requirements.txt").read_text()
    assert "pytest" not in runtime, "test tools belong in requirements-dev.txt"


def test_backend_env_agrees_with_db_env(example):
    a = answers(example)
    environments = compose.environments(example)
    back, db = environments["backend"], environments["db"]
    assert back["DB_PASSWORD"] == db["APP_DB_PASSWORD"]
    assert back["DB_USER"] == db["APP_DB_USER"] == a["db_user"]
    assert back["DB_NAME"] == db["POSTGRES_DB"] == a["db_name"]
    assert back["DB_PORT"] == str(a["db_port"])
    name, _ = compose.db_service(example)
    assert back["DB_HOST"] == name == a["db_service"]
    assert back["DB_USER"] != db["POSTGRES_USER"], "the backend must not log in as the superuser"
    assert len(back["DJANGO_SECRET_KEY"]) >= 50


def test_backend_env_settings(example):
    a = answers(example)
    env = compose.service_environment(example, "docker-compose.dev.yml", "backend")
    assert env["DJANGO_SETTINGS_MODULE"] == f"{a['project_slug']}.settings"
    assert set(env["DJANGO_ALLOWED_HOSTS"].split(",")) >= {alias(example), "localhost", "127.0.0.1"}
    assert f"http://localhost:{a['frontend_port']}" in env["DJANGO_CSRF_TRUSTED_ORIGINS"].split(",")
    assert env["TZ"] == a["timezone"]
    assert env["DJANGO_LANGUAGE_CODE"] == a["language_code"]
    assert env["DJANGO_ADMIN_EMAIL"] == a["admin_email"]
    assert env["DJANGO_MIGRATE_ON_START"] == "0"
    # X-Forwarded-For is believed from SvelteKit's server only, by its alias
    assert env["DJANGO_TRUSTED_PROXIES"] == answer_alias(a, "frontend")
    assert int(env["DJANGO_TOKEN_TTL_HOURS"]) > 0
    for name in ("LOGIN_CLIENT", "LOGIN_ACCOUNT", "SIGNUP_CLIENT", "SIGNUP_ACCOUNT"):
        assert re.fullmatch(r"\d+/(s|min|hour|day)", env[f"DJANGO_RATE_{name}"]), name


def test_no_plaintext_token_app(example):
    slug = answers(example)["project_slug"]
    settings = (example / "back" / slug / "settings.py").read_text()
    assert '"knox",' in settings
    for path in back_files(example):
        if path.suffix == ".py" and "migrations" not in path.parts:
            assert "rest_framework.authtoken" not in path.read_text(), path


def test_settings_point_at_the_db_service(example):
    a = answers(example)
    settings = (example / "back" / a["project_slug"] / "settings.py").read_text()
    assert '"ENGINE": "django.db.backends.postgresql"' in settings
    assert f'DB_SERVICE = "{a["db_service"]}"' in settings
    assert '"HOST": env.str("DB_HOST", DB_SERVICE)' in settings
    assert 'required("DB_PASSWORD")' in settings
    assert 'AUTH_USER_MODEL = "personas.Usuario"' in settings


def test_dev_compose_backend_service(example):
    a = answers(example)
    compose = yaml.safe_load((example / "docker-compose.dev.yml").read_text())
    backend = compose["services"]["backend"]
    assert backend["container_name"] == f"{a['project_slug']}_backend_dev"
    assert backend["build"] == {"context": "./back", "target": "dev"}
    assert "dev" in dockerfile_stages(example / "back/Dockerfile")
    assert backend["env_file"] == "back/.env"
    assert "./back:/app" in backend["volumes"]
    assert backend["ports"] == [f"127.0.0.1:{a['backend_port']}:{a['backend_port']}"]
    assert backend["networks"]["app"]["aliases"] == [alias(example)]
    assert "depends_on" not in backend
    assert backend["command"] == ["python", "manage.py", "runserver", f"0.0.0.0:{a['backend_port']}"]


def test_migration_is_shipped(example):
    migration = (example / "back/personas/migrations/0001_initial.py").read_text()
    assert "name='Usuario'" in migration and "'swappable': 'AUTH_USER_MODEL'" in migration


# ===========================================================================
# Full tier
# ===========================================================================
@pytest.fixture(scope="session")
def backend_venv(giga_project) -> Path:
    return venv_for(giga_project / "back")


@pytest.fixture(scope="session")
def giga_backend(giga_project, giga_db, backend_venv) -> Backend:
    backend = Backend(giga_project, giga_db, backend_venv)
    backend.manage("migrate", "--noinput", check=True)
    return backend


def production_env(project: Path) -> dict[str, str]:
    slug = answers(project)["project_slug"]
    env = {key: value.format(alias=alias(project)) for key, value in PRODUCTION_ENV.items()}
    return {**env, "DJANGO_SETTINGS_MODULE": f"{slug}.production"}


@pytest.mark.full
def test_manage_py_check(giga_backend):
    result = giga_backend.manage("check")
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout
    # the document's "Test de conectividad completa"
    result = giga_backend.manage("check", "--database=default")
    assert result.returncode == 0, result.stderr


@pytest.mark.full
def test_check_deploy_passes_with_production_settings(giga_backend, giga_project):
    result = giga_backend.manage("check", "--deploy", "--fail-level", "WARNING", env=production_env(giga_project))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


@pytest.mark.full
def test_check_deploy_catches_non_production_choices(giga_backend, giga_project):
    env = production_env(giga_project)
    console_mail = giga_backend.manage("check", "--deploy", "--fail-level", "WARNING",
                                       env={**env, "EMAIL_URL": "console://"})
    assert console_mail.returncode == 1 and "mail.E001" in console_mail.stderr
    no_tls = giga_backend.manage("check", "--deploy", "--fail-level", "WARNING",
                                 env={**env, "DJANGO_SECURE_PROXY": "0"})
    assert no_tls.returncode == 1 and "security.W008" in no_tls.stderr and "security.W004" in no_tls.stderr
    missing = giga_backend.manage("check", env={**env, "DJANGO_ALLOWED_HOSTS": ""})
    assert missing.returncode == 1 and "DJANGO_ALLOWED_HOSTS" in missing.stderr


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
def test_generated_test_suite_passes(giga_backend, giga_project, tmp_path):
    """As CI runs it (`pytest --cov`): every test passes, and the coverage
    they reach clears pyproject.toml's fail_under by the small margin
    back/README.md states, no more (a threshold left far below is no gate)."""
    result = giga_backend.run("pytest", "-q", "-p", "no:cacheprovider", "--cov", timeout=900,
                              env={"COVERAGE_FILE": str(tmp_path / ".coverage")})
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert re.search(r"\d+ passed", result.stdout)
    threshold = tomllib.loads((giga_project / "back/pyproject.toml").read_text())["tool"]["coverage"]["report"]["fail_under"]
    total = float(re.search(rf"Required test coverage of {threshold}(?:\.0)?% reached\. Total coverage: ([\d.]+)%",
                            result.stdout).group(1))
    stated = int(re.search(r"The shipped tests reach (\d+)%", (giga_project / "back/README.md").read_text()).group(1))
    assert int(total) == stated, (total, stated)
    assert not list((giga_project / "back").glob(".coverage*")), "coverage data belongs outside back/"


@pytest.mark.full
def test_api_over_http(giga_backend):
    with giga_backend.serve() as (base, _):
        assert http("GET", f"{base}/api/health/")[:2] == (200, {"status": "ok"})
        signup = {"username": "http-user", "email": "http@example.com", "password": "a-Strong-passw0rd!"}
        status, body, _ = http("POST", f"{base}/api/auth/signup/", signup)
        assert status == 201 and body["username"] == "http-user", body
        status, body, _ = http("POST", f"{base}/api/auth/signup/", signup)
        assert status == 400 and "username" in body
        status, body, _ = http("POST", f"{base}/api/auth/login/", {"username": "http-user",
                                                                    "password": signup["password"]})
        assert status == 200 and body["user"]["email"] == "http@example.com"
        token = body["token"]
        assert http("GET", f"{base}/api/auth/me/", token=token)[1]["username"] == "http-user"
        assert http("GET", f"{base}/api/users/", token=token)[0] == 403
        assert http("POST", f"{base}/api/auth/logout/", token=token)[0] == 204
        assert http("GET", f"{base}/api/auth/me/", token=token)[0] == 401
        status, body, _ = http("POST", f"{base}/api/auth/login/", raw=b"{not json")
        assert status == 400 and body["detail"].startswith("JSON parse error")
        status, text, _ = http("GET", f"{base}/api/schema/")
        assert status == 200 and text.startswith("openapi: 3")
        # SvelteKit's server calls the backend by its network alias
        assert http("GET", f"{base}/api/health/", headers={"Host": alias(giga_backend.project)})[0] == 200
        assert http("GET", f"{base}/api/health/", headers={"Host": "evil.example"})[0] == 400


@pytest.mark.full
def test_production_stage_collects_and_serves_the_admins_static_files(giga_project, giga_db, backend_venv,
                                                                      tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    subprocess.run(["cp", "-a", str(giga_project / "back"), str(project / "back")], check=True)
    # the backend's environment: back/.env and this file's `environment:`
    shutil.copy(giga_project / "docker-compose.dev.yml", project)
    backend = Backend(project, giga_db, backend_venv)
    # the image's `RUN ... collectstatic`, with the production stage's ENV and
    # no secrets (a build has none)
    (collect,) = [run for run in backend.stage.runs if "collectstatic" in run]
    result = backend.run("sh", "-c", collect, env={**backend.stage.env, "DB_PASSWORD": "", "DJANGO_SECRET_KEY": ""})
    assert result.returncode == 0, result.stdout + result.stderr
    assert (project / "back/staticfiles/staticfiles.json").is_file()
    with backend.serve(env=production_env(giga_project)) as (base, _):
        https = {"X-Forwarded-Proto": "https"}
        status, text, _ = http("GET", f"{base}/admin/login/", headers=https)
        assert status == 200 and "csrfmiddlewaretoken" in text
        css = re.search(r'href="(/static/admin/css/base\.[0-9a-f]{12}\.css)"', text)
        assert css, "hashed static names (manifest storage)"
        assert http("GET", base + css.group(1), headers=https)[0] == 200
        # plain HTTP: the admin is redirected to HTTPS, the API (internal calls, health) is not
        assert http("GET", f"{base}/admin/login/")[0] == 301
        assert http("GET", f"{base}/api/health/")[0] == 200


@pytest.mark.full
@pytest.mark.parametrize("connections", ["persistent", "pool"])
def test_health_is_503_while_the_db_is_down_and_recovers_without_restart(giga_project, fresh_db_server,
                                                                          backend_venv, connections):
    db = fresh_db_server(giga_project)
    backend = Backend(giga_project, db, backend_venv)
    backend.manage("migrate", "--noinput", check=True)
    with backend.serve(env={"DB_POOL": "1"} if connections == "pool" else {}) as (base, process):
        status, body, _ = http("GET", f"{base}/api/health/")
        assert status == 200, body
        db.stop()
        for _ in range(3):
            status, body, elapsed = http("GET", f"{base}/api/health/", timeout=10)
            # the public learns nothing of the database: no host, address, port or role
            assert (status, body) == (503, {"status": "unavailable"})
            assert elapsed < 5, f"answered after {elapsed:.1f}s"
        db.start()
        deadline = time.monotonic() + 30
        while True:
            status, body, _ = http("GET", f"{base}/api/health/", timeout=10)
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert status == 200, body
        assert process.poll() is None, "the backend must recover without a restart"
    log = process.log_path.read_text()
    assert log.count("Starting granian") == 1, log
    # ... the log does: libpq's reason, naming the server (with the pool, psycopg's pool logs it)
    assert "Health check: database unavailable" in log
    assert any(f"port {db.port}" in line and db.address in line for line in log.splitlines()), log[-3000:]
    assert "sqlite" not in log.lower()


@pytest.mark.full
def test_entrypoint_waits_for_a_late_db_and_migrates_only_on_request(giga_project, fresh_db_server, backend_venv):
    db = fresh_db_server(giga_project)
    backend = Backend(giga_project, db, backend_venv)
    db.stop()
    threading.Timer(4, db.start).start()
    started = time.monotonic()
    result = backend.run("docker-entrypoint.sh", "python", "manage.py", "showmigrations", "personas",
                         env={"DB_WAIT_TIMEOUT": "60"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert time.monotonic() - started >= 3
    waits = [line for line in result.stderr.splitlines() if "unavailable (attempt" in line]
    assert waits, result.stderr
    assert "is up (attempt" in result.stdout
    assert "[ ] 0001_initial" in result.stdout, "migrated without DJANGO_MIGRATE_ON_START=1"
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


# ===========================================================================
# Full tier: hardening (brute-force limits, tokens, health, malformed
# requests, production mail and headers)
# ===========================================================================
LOW_RATES = {"DJANGO_RATE_LOGIN_CLIENT": "4/min", "DJANGO_RATE_LOGIN_ACCOUNT": "3/min",
             "DJANGO_RATE_SIGNUP_CLIENT": "3/min", "DJANGO_RATE_SIGNUP_ACCOUNT": "2/min"}
FRONTEND_ADDRESS = "127.0.0.5"  # where the frontend's alias resolves in these tests


def app_query(db, sql: str, params=None) -> list[tuple]:
    return db.query(sql, params=params, **db.app)


def frontend_alias(project: Path) -> str:
    return answer_alias(answers(project), "frontend")


def post_json(base: str, path: str, body: dict, source: str, forwarded_for: str | None = None):
    headers = [("Content-Type", "application/json")]
    if forwarded_for:
        headers.append(("X-Forwarded-For", forwarded_for))
    status, response_headers, payload = raw_request(base, "POST", path, json.dumps(body).encode(), headers,
                                                    source=source)
    return status, response_headers, json.loads(payload) if payload else None


def login_from(base, source, username, password="wrong-password", forwarded_for=None):
    return post_json(base, "/api/auth/login/", {"username": username, "password": password}, source,
                     forwarded_for)


def signup_from(base, source, username):
    return post_json(base, "/api/auth/signup/", {"username": username, "email": "x@example.com", "password": "x"},
                     source)


def assert_throttled(answer):
    status, headers, body = answer
    assert status == 429, (status, body)
    assert set(body) == {"detail"} and body["detail"].startswith("Request was throttled.")
    assert 1 <= int(headers["retry-after"]) <= 60


@pytest.fixture
def limited_backend(giga_backend, giga_db):
    """The production server (granian, 2 worker processes) with low limits,
    the frontend's alias resolving to FRONTEND_ADDRESS, and no attempts counted yet."""
    app_query(giga_db, "DELETE FROM personas_attempt")
    backend = Backend(giga_backend.project, giga_db, giga_backend.venv,
                      hosts={frontend_alias(giga_backend.project): FRONTEND_ADDRESS})
    with backend.serve(env=LOW_RATES) as (base, process):
        yield base, process


@pytest.mark.full
def test_login_is_limited_per_client_and_other_clients_are_not_affected(limited_backend, giga_db):
    base, _ = limited_backend
    for n in range(4):
        assert login_from(base, "127.0.0.2", f"guess{n}")[0] == 400
    assert_throttled(login_from(base, "127.0.0.2", "guess9"))
    assert login_from(base, "127.0.0.3", "guess9")[0] == 400
    # counted in the database, which every worker process shares
    assert app_query(giga_db, "SELECT count(*) FROM personas_attempt")[0][0] == 2 * 5


@pytest.mark.full
def test_login_is_limited_per_account_across_client_addresses(limited_backend):
    base, _ = limited_backend
    for n in range(3):
        assert login_from(base, f"127.0.1.{n + 1}", "victim")[0] == 400
    assert_throttled(login_from(base, "127.0.1.9", "victim"))
    assert_throttled(login_from(base, "127.0.1.10", "VICTIM"))
    assert login_from(base, "127.0.1.9", "someone-else")[0] == 400


@pytest.mark.full
def test_forwarded_for_is_believed_only_from_the_frontend(limited_backend):
    base, _ = limited_backend
    # an untrusted client sends a new X-Forwarded-For each time: still one client
    for n in range(4):
        assert login_from(base, "127.0.2.1", f"spoof{n}", forwarded_for=f"198.51.100.{n}")[0] == 400
    assert_throttled(login_from(base, "127.0.2.1", "spoof9", forwarded_for="198.51.100.99"))
    # the frontend (its alias, DJANGO_TRUSTED_PROXIES' default) forwards two
    # browsers: each has its own count, and the last entry is the browser
    for n in range(4):
        assert login_from(base, FRONTEND_ADDRESS, f"a{n}", forwarded_for=f"10.1.1.1, 203.0.113.{n}, 198.51.100.7")[0] == 400
    assert_throttled(login_from(base, FRONTEND_ADDRESS, "a9", forwarded_for="198.51.100.7"))
    assert login_from(base, FRONTEND_ADDRESS, "a9", forwarded_for="198.51.100.8")[0] == 400


@pytest.mark.full
def test_signup_is_limited_per_client_and_per_account(limited_backend):
    base, _ = limited_backend
    for n in range(2):
        assert signup_from(base, f"127.0.3.{n + 1}", "wanted")[0] == 400
    assert_throttled(signup_from(base, "127.0.3.9", "wanted"))
    for n in range(3):
        assert signup_from(base, "127.0.4.1", f"name{n}")[0] == 400
    assert_throttled(signup_from(base, "127.0.4.1", "name9"))
    assert signup_from(base, "127.0.4.2", "name9")[0] == 400


def admin_login(base: str, source: str, username: str) -> int:
    status, headers, page = raw_request(base, "GET", "/admin/login/", source=source)
    assert status == 200
    cookie = re.search(r"csrftoken=([^;]+)", headers["set-cookie"]).group(1)
    token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1).decode()
    form = f"csrfmiddlewaretoken={token}&username={username}&password=wrong-password&next=/admin/".encode()
    status, headers, page = raw_request(base, "POST", "/admin/login/", form, source=source, headers=[
        ("Content-Type", "application/x-www-form-urlencoded"), ("Cookie", f"csrftoken={cookie}")])
    if status == 429:
        assert int(headers["retry-after"]) >= 1 and b"Too many login attempts" in page
    return status


@pytest.mark.full
def test_the_admin_login_is_limited_with_the_api_login(limited_backend):
    base, _ = limited_backend
    assert [admin_login(base, "127.0.5.1", "boss") for _ in range(3)] == [200, 200, 200]
    assert admin_login(base, "127.0.5.2", "boss") == 429  # the account, from anywhere
    assert_throttled(login_from(base, "127.0.5.3", "boss"))  # and through the API
    assert [admin_login(base, "127.0.5.1", f"x{n}") for n in range(2)] == [200, 429]  # the client


def create_user(backend, username: str, password: str, staff: bool = False) -> None:
    backend.manage("shell", "-c", "from personas.models import Usuario; "
                   f"Usuario.objects.create_user({username!r}, 'u@example.com', {password!r}, is_staff={staff})",
                   check=True)


def data_dump(db) -> bytes:
    """Every row of every table of the app's database, as a dump's COPY data holds it."""
    with db.connect(**db.app) as conn:
        tables = [name for (name,) in conn.execute(
            "SELECT quote_ident(table_name) FROM information_schema.tables "
            "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")]
        chunks = []
        for table in tables:
            with conn.cursor().copy(f"COPY {table} TO STDOUT") as copy:
                chunks.extend(bytes(data) for data in copy)
    assert len(tables) >= len(DJANGO_TABLES)
    return b"".join(chunks)


@pytest.mark.full
def test_tokens_are_hashed_expire_and_are_revoked(giga_backend, giga_db):
    create_user(giga_backend, "token-user", "a-Strong-passw0rd!")
    with giga_backend.serve() as (base, _):
        login = {"username": "token-user", "password": "a-Strong-passw0rd!"}
        tokens = [http("POST", f"{base}/api/auth/login/", login)[1] for _ in range(3)]
        first, second, third = (body["token"] for body in tokens)
        assert all(re.fullmatch(r"[0-9a-f]{64}", body["token"]) and body["expiry"] for body in tokens)
        for token in (first, second, third):
            assert http("GET", f"{base}/api/auth/me/", token=token)[0] == 200
        # stored hashed: neither the table nor a dump of the database holds a token
        rows = app_query(giga_db, "SELECT t.* FROM knox_authtoken t JOIN personas_usuario u ON u.id = t.user_id "
                                  "WHERE u.username = 'token-user'")
        assert len(rows) == 3
        dump = data_dump(giga_db)
        for token in (first, second, third):
            assert not any(token in str(value) for row in rows for value in row)
            assert token.encode() not in dump
        # expired: 401, like any invalid token
        app_query(giga_db, "UPDATE knox_authtoken SET expiry = now() - interval '1 second' "
                           "WHERE token_key = %s", [second[:15]])
        assert http("GET", f"{base}/api/auth/me/", token=second)[:2] == (401, {"detail": "Invalid token."})
        # logout revokes this token, and only it
        assert http("POST", f"{base}/api/auth/logout/", token=first)[0] == 204
        assert http("GET", f"{base}/api/auth/me/", token=first)[:2] == (401, {"detail": "Invalid token."})
        assert http("GET", f"{base}/api/auth/me/", token=third)[0] == 200


@pytest.mark.full
def test_health_gives_details_to_staff_only(giga_backend):
    create_user(giga_backend, "health-staff", "a-Strong-passw0rd!", staff=True)
    with giga_backend.serve() as (base, _):
        token = http("POST", f"{base}/api/auth/login/", {"username": "health-staff",
                                                          "password": "a-Strong-passw0rd!"})[1]["token"]
        assert http("GET", f"{base}/api/health/")[:2] == (200, {"status": "ok"})
        status, body, _ = http("GET", f"{base}/api/health/", token=token)
        assert status == 200 and body["status"] == "ok" and body["database"] == "ok" and body["users"] >= 1
        assert http("GET", f"{base}/api/health/", token="0" * 64)[:2] == (200, {"status": "ok"})


# -- malformed requests: a 4xx JSON answer on both servers, never a 500 -------
SERVERS = {"granian": "", "runserver": "dev"}  # Dockerfile target of each
DEPTH = 20_000
DEEP_BODIES = {
    "arrays": b"[" * DEPTH + b"]" * DEPTH,
    "objects": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
    "mixed": b'[{"a":' * (DEPTH // 2) + b"1" + b"}]" * (DEPTH // 2),
    "in a field": b'{"username": ' + b"[" * DEPTH + b"]" * DEPTH + b', "password": "x"}',
}
# Tokens no login ever hands out. Control characters other than tab are not
# valid in an HTTP header (RFC 9110 5.5); granian refuses those itself with a
# bodiless 400 before Django sees them, runserver passes them on.
CONTROL_TOKENS = [b"\x00", b"abc\x00def", b"\x01" * 64, b"\x1f" * 64, b"\x7f" * 64, b"a" * 63 + b"\x00"]
OTHER_BAD_TOKENS = [b"\xff" * 64, b"\xc3\xa9" * 32, b"\x80", b"A" * 64, b"g" * 64, b"0" * 65, b"0" * 8000,
                    b"0" * 32 + b"\t" + b"0" * 31]
UNROUTED = ["/api/auth/login", "/api/auth/signup", "/api/nowhere/", "/api/users/1", "/api", "/api/health"]


@pytest.fixture(scope="module", params=list(SERVERS))
def any_server(request, giga_backend):
    backend = Backend(giga_backend.project, giga_backend.db, giga_backend.venv, target=SERVERS[request.param])
    with backend.serve(env=LOW_RATES | {"DJANGO_RATE_LOGIN_CLIENT": "1000/min", "DJANGO_RATE_SIGNUP_CLIENT": "1000/min"}) as (base, process):
        yield request.param, base, process
    log = process.log_path.read_text()
    assert "Traceback" not in log and "Internal Server Error" not in log, log[-5000:]


def assert_json_4xx(status, headers, body, expected_status, expected=None):
    assert status == expected_status, (status, body[:300])
    assert headers["content-type"] == "application/json", headers
    data = json.loads(body)
    assert set(data) == {"detail"}
    if expected:
        assert data == expected


@pytest.mark.full
@pytest.mark.parametrize("path", ["/api/auth/login/", "/api/auth/signup/"])
@pytest.mark.parametrize("shape", list(DEEP_BODIES))
def test_json_nested_too_deeply_is_a_400(any_server, path, shape):
    _, base, _ = any_server
    status, headers, body = raw_request(base, "POST", path, DEEP_BODIES[shape],
                                        [("Content-Type", "application/json")], source="127.0.6.1")
    assert_json_4xx(status, headers, body, 400)
    assert json.loads(body)["detail"].startswith("JSON parse error")


@pytest.mark.full
@pytest.mark.parametrize("token", CONTROL_TOKENS + OTHER_BAD_TOKENS, ids=lambda t: f"{t[:6]!r}x{len(t)}")
@pytest.mark.parametrize("method, path", [("GET", "/api/auth/me/"), ("POST", "/api/auth/logout/"),
                                          ("GET", "/api/users/")])
def test_malformed_tokens_are_a_401(any_server, token, method, path):
    server, base, _ = any_server
    status, headers, body = raw_request(base, method, path, headers=[("Authorization", b"Token " + token)])
    if server == "granian" and token in CONTROL_TOKENS:
        assert (status, body) == (400, b""), "granian's own refusal of an invalid header"
    else:
        # The detail depends on what the server hands Django (runserver strips
        # trailing \x1f, granian drops non-ASCII values): always a 401, in JSON.
        assert_json_4xx(status, headers, body, 401)


@pytest.mark.full
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("path", UNROUTED)
def test_unsafe_methods_on_unrouted_api_paths_are_a_json_404(any_server, method, path):
    _, base, _ = any_server
    status, headers, body = raw_request(base, method, path, b'{"username": "x"}',
                                        [("Content-Type", "application/json")])
    assert_json_4xx(status, headers, body, 404, {"detail": "Not found."})


# -- production settings --------------------------------------------------------
@pytest.mark.full
def test_production_requires_csrf_trusted_origins(giga_backend, giga_project):
    env = production_env(giga_project)
    for missing in ({"DJANGO_CSRF_TRUSTED_ORIGINS": ""}, {"DJANGO_CSRF_TRUSTED_ORIGINS": " , "}):
        result = giga_backend.manage("check", env={**env, **missing})
        assert result.returncode == 1
        assert "ImproperlyConfigured" in result.stderr and "DJANGO_CSRF_TRUSTED_ORIGINS" in result.stderr.strip().splitlines()[-1]
    result = giga_backend.manage("shell", "-c", "from django.conf import settings; print(settings.CSRF_TRUSTED_ORIGINS)",
                                 env={**env, "DJANGO_CSRF_TRUSTED_ORIGINS": "https://admin.example.com"})
    assert result.stdout.strip().splitlines()[-1] == "['https://admin.example.com']"


@pytest.mark.full
def test_hsts_subdomains_and_preload_are_opt_in(giga_backend, giga_project):
    env = production_env(giga_project)
    https = [("X-Forwarded-Proto", "https")]
    with giga_backend.serve(env=env) as (base, _):
        status, headers, _ = raw_request(base, "GET", "/api/health/", headers=https)
        assert status == 200 and headers["strict-transport-security"] == "max-age=31536000"
    opt_in = {**env, "DJANGO_HSTS_INCLUDE_SUBDOMAINS": "1", "DJANGO_HSTS_PRELOAD": "1"}
    with giga_backend.serve(env=opt_in) as (base, _):
        status, headers, _ = raw_request(base, "GET", "/api/health/", headers=https)
        assert headers["strict-transport-security"] == "max-age=31536000; includeSubDomains; preload"
    result = giga_backend.manage("check", "--deploy", "--fail-level", "WARNING", env=opt_in)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.full
def test_production_mails_server_errors_to_the_admin(giga_backend, giga_project, tmp_path):
    from harness.mail import smtp_server

    slug = answers(giga_project)["project_slug"]
    # the production settings plus one view that fails, as a bug would
    (tmp_path / "failing_settings.py").write_text(f"from {slug}.production import *\nROOT_URLCONF = 'failing_urls'\n")
    (tmp_path / "failing_urls.py").write_text(
        "from django.urls import path\n"
        f"from {slug}.urls import handler404, handler500, urlpatterns as project\n"
        "def fail(request):\n    raise RuntimeError('something broke')\n"
        "urlpatterns = [path('api/fail/', fail), *project]\n")
    admin_email = answers(giga_project)["admin_email"]
    with smtp_server() as inbox:
        env = {**production_env(giga_project), "EMAIL_URL": inbox.url,
               "DJANGO_SETTINGS_MODULE": "failing_settings", "PYTHONPATH": str(tmp_path)}
        with giga_backend.serve(env=env) as (base, _):
            status, headers, body = raw_request(base, "GET", "/api/fail/")
            assert (status, body) == (500, b'{"detail": "Internal server error."}'), body[-3000:]
            assert http("GET", f"{base}/api/nowhere/")[0] == 404
            message = inbox.wait_for(admin_email, "/api/fail/")
    assert len(inbox.messages) == 1, "one mail, for the 500 only"
    assert inbox.messages[0][0] == [admin_email]
    assert "ERROR" in message["Subject"]
    assert "something broke" in message.get_body(("plain",)).get_content()


# ===========================================================================
# Full tier: start order and reconnection, on the production server
# ===========================================================================
def granian_processes(process) -> list[tuple[int, str]]:
    """(pid, command line) of the server and its workers: the same list
    before and after means nothing was restarted."""
    def cmdline(pid: int) -> str:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()

    children = Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()
    return [(pid, cmdline(pid)) for pid in [process.pid, *map(int, children)]]


@pytest.mark.full
def test_backend_started_before_the_db_serves_once_it_is_up(giga_project, fresh_db_server, backend_venv):
    """The container's ENTRYPOINT + CMD started while the DB is down: it
    waits, then the same process (exec'd, not restarted) serves."""
    db = fresh_db_server(giga_project)
    backend = Backend(giga_project, db, backend_venv)
    backend.manage("migrate", "--noinput", check=True)
    db.stop()
    threading.Timer(4, db.start).start()
    started = time.monotonic()
    with backend.serve(env={"DB_WAIT_TIMEOUT": "60"}, ready_timeout=60) as (base, process):
        waited = time.monotonic() - started
        assert db.is_running()
        assert http("GET", f"{base}/api/health/")[:2] == (200, {"status": "ok"})
        assert process.poll() is None
        # the entrypoint exec'd the CMD: the process started is the server
        assert "granian" in granian_processes(process)[0][1]
    log = process.log_path.read_text()
    assert waited >= 3, f"served after {waited:.1f}s, before the DB was up:\n{log}"
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


# ===========================================================================
# Full tier: the probe `make verify` writes through the backend (the checklist
# itself runs on a real Docker engine: test_docker_verify.py)
# ===========================================================================
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
