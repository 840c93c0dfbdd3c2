"""System checks: this backend has no database of its own.

`python manage.py check` fails (exit status 1) when

* architecture.E001: a database's ENGINE is not PostgreSQL;
* architecture.E002: a settings module mentions SQLite, the file database
  Django's `startproject` uses by default.
"""

import ast
import importlib.util
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks

POSTGRESQL_ENGINE = "django.db.backends.postgresql"
FORBIDDEN_WORD = "sqlite"


def check_database_engine(app_configs: Sequence[AppConfig] | None = None,
                          database_settings: Mapping[str, Mapping[str, Any]] | None = None,
                          **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for alias, database in (database_settings or settings.DATABASES).items():
        engine = database.get("ENGINE", "")
        if engine != POSTGRESQL_ENGINE:
            errors.append(
                checks.Error(
                    f"DATABASES[{alias!r}]['ENGINE'] is {engine!r}, not {POSTGRESQL_ENGINE!r}.",
                    hint=(
                        "The backend has no database of its own: it must connect to the "
                        "isolated PostgreSQL service of db/ (DB_HOST)."
                    ),
                    id="architecture.E001",
                )
            )
    return errors


def check_settings_sources(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    for path in settings_source_files():
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            errors.append(checks.Error(f"Cannot read settings source {path}: {exc}", id="architecture.E002"))
            continue
        hits = [number for number, line in enumerate(lines, start=1) if FORBIDDEN_WORD in line.lower()]
        if hits:
            errors.append(
                checks.Error(
                    f"{path} mentions {FORBIDDEN_WORD!r} on line(s) {', '.join(map(str, hits))}.",
                    hint=(
                        "No file database, no fallback: every environment uses the isolated "
                        "PostgreSQL. Remove it from the settings."
                    ),
                    id="architecture.E002",
                )
            )
    return errors


def settings_source_files(module_name: str | None = None) -> list[Path]:
    """The source files of the settings module and of the modules of its
    package that it imports (e.g. production.py -> settings.py), recursively."""
    module_name = module_name or getattr(settings, "SETTINGS_MODULE", None)
    if not module_name:
        return []
    package_root = module_name.partition(".")[0]
    seen: set[str] = set()
    pending, files = [module_name], []
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _source_of(name)
        if path is None:
            continue
        files.append(path)
        pending.extend(imported for imported in _imports(path, name) if imported.partition(".")[0] == package_root)
    return files


def _source_of(module_name: str) -> Path | None:
    module = sys.modules.get(module_name)
    filename = getattr(module, "__file__", None)
    if filename is None:
        try:
            spec = importlib.util.find_spec(module_name)
        except (ImportError, ValueError):
            return None
        filename = spec.origin if spec else None
    if not filename or not filename.endswith(".py"):
        return None
    return Path(filename)


def _imports(path: Path, module_name: str) -> list[str]:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return []
    package = module_name.rpartition(".")[0]
    if path.name == "__init__.py":
        package = module_name
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            names.append(base)
            # `from package import settings` imports a module too
            names.extend(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names
