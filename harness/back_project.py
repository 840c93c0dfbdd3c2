"""What the template's tests of back/ share about a rendered backend: its
alias, its files, the production environment it is checked under, the
tables its migrations make, and the rows they read and write (users made
through manage.py, queries as the app role)."""

from __future__ import annotations

from pathlib import Path

from .answers import alias as answer_alias, recorded as answers

PRODUCTION_ENV = {
    "DJANGO_ALLOWED_HOSTS": "api.example.com,{alias}",
    "EMAIL_URL": "smtp+tls://mailer:s3cret@smtp.example.com:587",
    "DJANGO_DEBUG": "0",
}
DJANGO_TABLES = {"auth_group", "auth_group_permissions", "auth_permission", "knox_authtoken",
                 "django_admin_log", "django_content_type", "django_migrations", "django_session",
                 "personas_attempt", "personas_usuario", "personas_usuario_groups",
                 "personas_usuario_user_permissions"}
# Limits a test reaches in a few requests.
LOW_RATES = {"DJANGO_RATE_LOGIN_CLIENT": "4/min", "DJANGO_RATE_LOGIN_ACCOUNT": "3/min",
             "DJANGO_RATE_SIGNUP_CLIENT": "3/min", "DJANGO_RATE_SIGNUP_ACCOUNT": "2/min"}


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


def production_env(project: Path) -> dict[str, str]:
    slug = answers(project)["project_slug"]
    env = {key: value.format(alias=alias(project)) for key, value in PRODUCTION_ENV.items()}
    return {**env, "DJANGO_SETTINGS_MODULE": f"{slug}.production"}


def app_query(db, sql: str, params=None) -> list[tuple]:
    return db.query(sql, params=params, **db.app)


def create_user(backend, username: str, password: str, staff: bool = False) -> None:
    backend.manage("shell", "-c", "from personas.models import Usuario; "
                   f"Usuario.objects.create_user({username!r}, 'u@example.com', {password!r}, is_staff={staff})",
                   check=True)
