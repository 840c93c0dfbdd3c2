"""back/: the Django backend, which has no database of its own, as rendered
(quick tier): its layout, its image, exact pins, settings and environment that
point only at the DB service, and no file database anywhere. hadolint and
shellcheck run over every tier's files in test_rendering_containers.py.
"""

from __future__ import annotations

import os
import py_compile
import re

import yaml

from harness.answers import alias as answer_alias, recorded as answers
from harness import compose, images
from harness.dockerfile import dockerfile_stages
from harness.back_project import alias, back_files, sqlite_files


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
    assert re.search(rf"^FROM {re.escape(images.IMAGES['python'])} AS base$", text, re.M)
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
