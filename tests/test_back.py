"""back/: the Django backend, which has no database of its own.

Quick tier: the rendered files, statically (hadolint, shellcheck, pins,
cross-file agreement, no file database anywhere).

Full tier (`full`): the rendered backend runs natively as its container
would (tests/harness/django.py) against a real PostgreSQL started from the
rendered db/ (tests/harness/postgres.py), reaching it by the DB service name.
The architecture document's commands run literally.
"""

from __future__ import annotations

import json
import os
import py_compile
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml

from harness import dotenv
from harness.django import Backend, dockerfile_stages, http, venv_for
from harness.inputs import AWKWARD_PASSWORDS
from harness.render import example_answers

EXAMPLES = ["giga", "acme-pg18"]
PRODUCTION_ENV = {
    "DJANGO_ALLOWED_HOSTS": "api.example.com,{alias}",
    "EMAIL_URL": "smtp+tls://mailer:s3cret@smtp.example.com:587",
    "DJANGO_DEBUG": "0",
}
DJANGO_TABLES = {"auth_group", "auth_group_permissions", "auth_permission", "authtoken_token",
                 "django_admin_log", "django_content_type", "django_migrations", "django_session",
                 "personas_usuario", "personas_usuario_groups", "personas_usuario_user_permissions"}


@pytest.fixture(scope="session", params=EXAMPLES)
def example(request, render) -> Path:
    return render(example_answers(request.param))


def answers(project: Path) -> dict:
    return yaml.safe_load((project / ".copier-answers.yml").read_text())


def alias(project: Path) -> str:
    return answers(project)["project_slug"].replace("_", "-") + "-backend"


def back_files(project: Path) -> list[Path]:
    return sorted(p for p in (project / "back").rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts and ".pytest_cache" not in p.parts)


def run_tool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120)


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


def test_no_file_database_anywhere_in_back(example):
    for path in back_files(example):
        assert "sqlite" not in path.name.lower(), path
        assert "sqlite" not in path.read_bytes().decode("utf-8", "replace").lower(), path


def test_dockerfile_passes_hadolint(example):
    result = run_tool("hadolint", str(example / "back/Dockerfile"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_entrypoint_passes_shellcheck(example):
    result = run_tool("shellcheck", str(example / "back/docker-entrypoint.sh"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_essentials(example):
    text = (example / "back/Dockerfile").read_text()
    stages = dockerfile_stages(example / "back/Dockerfile")
    final = stages[""]
    assert re.search(r"^FROM python:3\.13-slim AS base$", text, re.M)
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
    for package in ("djangorestframework", "drf-spectacular", "environs", "granian", "whitenoise",
                    "psycopg-binary", "psycopg-pool", "pytest", "pytest-django"):
        assert package in pins, package
    runtime = (back / "requirements.txt").read_text()
    assert "pytest" not in runtime, "test tools belong in requirements-dev.txt"


def test_backend_env_agrees_with_db_env(example):
    a = answers(example)
    back = dotenv.load(example / "back/.env")
    db = dotenv.load(example / "db/.env")
    assert back["DB_PASSWORD"] == db["APP_DB_PASSWORD"]
    assert back["DB_USER"] == db["APP_DB_USER"] == a["db_user"]
    assert back["DB_NAME"] == db["POSTGRES_DB"] == a["db_name"]
    assert back["DB_PORT"] == str(a["db_port"])
    (service,) = yaml.safe_load((example / "db/docker-compose.yml").read_text())["services"]
    assert back["DB_HOST"] == service == a["db_service"]
    assert back["DB_USER"] != db["POSTGRES_USER"], "the backend must not log in as the superuser"
    assert len(back["DJANGO_SECRET_KEY"]) >= 50


def test_backend_env_settings(example):
    a = answers(example)
    env = dotenv.load(example / "back/.env")
    assert env["DJANGO_SETTINGS_MODULE"] == f"{a['project_slug']}.settings"
    assert set(env["DJANGO_ALLOWED_HOSTS"].split(",")) >= {alias(example), "localhost", "127.0.0.1"}
    assert f"http://localhost:{a['frontend_port']}" in env["DJANGO_CSRF_TRUSTED_ORIGINS"].split(",")
    assert env["TZ"] == a["timezone"]
    assert env["DJANGO_LANGUAGE_CODE"] == a["language_code"]
    assert env["DJANGO_ADMIN_EMAIL"] == a["admin_email"]
    assert env["DJANGO_MIGRATE_ON_START"] == "0"


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
    (tmp_path / "other_settings.py").write_text(
        f"from {slug}.settings import *\nDATABASES['default']['ENGINE'] = 'django.db.backends.' + 'sq' + 'lite3'\n")
    result = giga_backend.manage("check", env={"DJANGO_SETTINGS_MODULE": "other_settings",
                                               "PYTHONPATH": f"{tmp_path}:{giga_backend.dir}"})
    assert result.returncode == 1
    assert "architecture.E001" in result.stderr and "architecture.E002" not in result.stderr
    (tmp_path / "other_settings.py").write_text(f"from {slug}.settings import *  # no fallback to SQLite\n")
    result = giga_backend.manage("check", env={"DJANGO_SETTINGS_MODULE": "other_settings",
                                               "PYTHONPATH": f"{tmp_path}:{giga_backend.dir}"})
    assert result.returncode == 1 and "architecture.E002" in result.stderr


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
def test_generated_test_suite_passes(giga_backend):
    result = giga_backend.run("pytest", "-q", "-p", "no:cacheprovider", timeout=900)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert re.search(r"\d+ passed", result.stdout)


@pytest.mark.full
def test_api_over_http(giga_backend):
    with giga_backend.serve() as (base, _):
        status, body, _ = http("GET", f"{base}/api/health/")
        assert status == 200 and body["status"] == "ok" and body["database"] == "ok"
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
            assert status == 503, body
            assert elapsed < 5, f"answered after {elapsed:.1f}s"
            assert body["status"] == "unavailable" and body["database"] == "unreachable" and body["detail"]
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
    result = backend.run("docker-entrypoint.sh", "granian", "--version", env={"DB_WAIT_TIMEOUT": "3"})
    assert result.returncode == 1
    assert "still unavailable after" in result.stderr
    assert "Connection refused" in result.stderr or "connection failed" in result.stderr


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
