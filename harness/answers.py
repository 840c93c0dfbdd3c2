"""A rendered project's recorded answers, typed as the template uses them.

Copier records every answer as the string the user typed (numbers included, so
that `010000` cannot turn into 4096); the template converts the numeric ones
with `| int`, and so does this helper.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from . import dotenv
from .render import REPO

NUMERIC = frozenset({"db_port", "db_host_port", "backend_port", "frontend_port", "mail_ui_port", "postgres_version",
                     "db_memory_mb"})


def choices(question: str) -> list[str]:
    """The choices copier.yml offers for `question`, as the user types them."""
    config = yaml.safe_load((REPO / "copier.yml").read_text(encoding="utf-8"))
    return list(config[question]["choices"])


# Every PostgreSQL major the template offers, typed like recorded() types it.
POSTGRES_VERSIONS = [int(version) for version in choices("postgres_version")]


def as_typed(project: Path) -> dict:
    """.copier-answers.yml of `project`: every answer as the string typed."""
    return yaml.safe_load((project / ".copier-answers.yml").read_text(encoding="utf-8"))


def recorded(project: Path) -> dict:
    """.copier-answers.yml of `project`, numeric answers as int."""
    return {key: int(value) if key in NUMERIC else value for key, value in as_typed(project).items()}


def alias(answers: dict, service: str) -> str:
    """The network alias of a dev service: `giga-backend` for slug `giga`."""
    return f"{answers['project_slug'].replace('_', '-')}-{service}"


def secrets(project: Path) -> dict[str, str]:
    """The database's passwords and backup passphrase of `project`, which only its env files hold."""
    db_env = dotenv.load(project / "db/.env")
    return {"db_admin_password": db_env["POSTGRES_PASSWORD"], "db_password": db_env["APP_DB_PASSWORD"],
            "db_monitor_password": db_env["MONITOR_DB_PASSWORD"],
            "db_backup_passphrase": db_env["PGBACKREST_REPO1_CIPHER_PASS"]}
