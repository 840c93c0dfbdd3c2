"""python manage.py verify_architecture

Checks, one line each (✅ or ❌), that this backend has no database of its
own and really uses the isolated PostgreSQL; exits 1 if any line is ❌.

    docker exec <slug>_backend_dev python manage.py verify_architecture
    ... verify_architecture --only no-file-db no-pg-data   # some checks only

scripts/verify (`make verify`) runs them in groups, one per checklist item.

The network check reads the compose files: docker-compose.dev.yml mounts them
into the container at /compose; from a checkout, the project root is found
next to this backend (or pass --compose-dir).
"""

import os
import uuid
from argparse import ArgumentParser
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.db.migrations.executor import MigrationExecutor

from ...checks import POSTGRESQL_ENGINE

# SQLite, the file database Django's startproject defaults to: the first 16
# bytes of its files, and the names it gives them.
FILE_DB_MAGIC = b"SQLite format 3\0"
FILE_DB_SUFFIXES = (".sqlite", ".sqlite3")
PG_DATA_ROOT = Path("/var/lib/postgresql")
# Where a PostgreSQL data directory (it always holds a PG_VERSION file) could
# hide on the backend's side; scanned a few levels deep.
PG_SCAN_ROOTS = (Path("/var/lib"), Path("/srv"), Path("/data"), Path("/usr/local/pgsql"))
# Where the compose files are: mounted into the container, or the project root
# of a checkout; each holds docker-compose.dev.yml and db/docker-compose.yml.
COMPOSE_MOUNT = Path("/compose")
DEV_COMPOSE = "docker-compose.dev.yml"
DB_COMPOSE = "db/docker-compose.yml"
BACKEND_SERVICE = "backend"
# The backend's own code and image, running its queued tasks.
WORKER_SERVICE = "worker"
FRONTEND_SERVICE = "frontend"
SKIP_DIRS = {".git", ".venv", "venv", "node_modules", "__pycache__", ".pytest_cache", "staticfiles"}


# --only's names -> the ✅/❌ line's title, in the order they run.
CHECKS = {
    "engine": "ENGINE is PostgreSQL",
    "host": "HOST is the isolated database service {service!r}",
    "connection": "Connection to the isolated database",
    "migrations": "No unapplied migrations",
    "tables": "Django's tables exist in the isolated database",
    "round-trip": "Write/read round trip (rolled back)",
    "no-file-db": "No embedded file database on the backend side",
    "no-pg-data": "No PostgreSQL data directory on the backend side",
    "networks": "Only the backend shares a network with the database",
}


class Abort(Exception):
    """A check failed with this reason."""


def walk(root: str | Path, max_depth: int) -> Iterator[Path]:
    """Files under root, at most max_depth directories down, symlinks not followed."""
    root = Path(root)
    if not root.is_dir():
        return
    base_depth = len(root.parts)
    for directory, subdirs, files in os.walk(root, onerror=lambda error: None):
        depth = len(Path(directory).parts) - base_depth
        subdirs[:] = [d for d in subdirs if d not in SKIP_DIRS] if depth < max_depth else []
        for name in files:
            yield Path(directory) / name


def file_databases(root: str | Path, max_depth: int = 6) -> list[Path]:
    """Files under root that are embedded file databases, by name or by content."""
    found = []
    for path in walk(root, max_depth):
        try:
            if path.suffix.lower() in FILE_DB_SUFFIXES:
                found.append(path)
                continue
            with path.open("rb") as handle:
                if handle.read(16) == FILE_DB_MAGIC:
                    found.append(path)
        except OSError:
            continue
    return found


def postgres_data_dirs(roots: Iterable[Path] = PG_SCAN_ROOTS, max_depth: int = 4) -> list[Path]:
    """/var/lib/postgresql if it exists, and every directory holding a
    PG_VERSION file (the mark of a PostgreSQL data directory) under roots."""
    found = [PG_DATA_ROOT] if PG_DATA_ROOT.exists() else []
    for root in roots:
        found.extend(path.parent for path in walk(root, max_depth) if path.name == "PG_VERSION")
    return sorted(set(found))


def service_networks(compose: dict[str, Any]) -> dict[str, set[str]]:
    """Service name -> the Docker networks it joins (their real names, as
    `docker network ls` shows them). A service that names no network joins
    its project's `default` network."""
    project = compose.get("name", "")
    declared = compose.get("networks") or {}

    def real_name(key: str) -> str:
        return str((declared.get(key) or {}).get("name") or f"{project}_{key}")

    return {name: {real_name(key) for key in (service.get("networks") or ["default"])}
            for name, service in (compose.get("services") or {}).items()}


def network_isolation(db_compose: dict[str, Any], dev_compose: dict[str, Any], db_service: str) -> str:
    """The database shares a network with the backend (and its task worker,
    the same code) and nobody else of the
    dev compose; the db project's own optional services (exporter, scheduled
    backup) reach it on that project's private network, never on the
    backend's; the frontend shares a network with the backend. Returns a
    summary, raises Abort on a violation."""
    db_tier = service_networks(db_compose)
    app_tier = service_networks(dev_compose)
    if db_service not in db_tier:
        raise Abort(f"no service {db_service!r} in {DB_COMPOSE}")
    db_networks = db_tier.pop(db_service)
    backend = app_tier.get(BACKEND_SERVICE, set())
    shared = backend & db_networks
    intruders = [(name, networks & db_networks) for name, networks in app_tier.items()
                 if name not in (BACKEND_SERVICE, WORKER_SERVICE) and networks & db_networks]
    intruders += [(name, networks & shared) for name, networks in db_tier.items() if networks & shared]
    if intruders:
        listed = sorted(f"{name} (on {', '.join(sorted(networks))})" for name, networks in intruders)
        raise Abort(f"{', '.join(listed)} can reach the database; only {BACKEND_SERVICE!r} "
                    f"and its {WORKER_SERVICE!r} may")
    if not shared:
        raise Abort(f"{BACKEND_SERVICE!r} shares no network with {db_service!r}: "
                    f"{DEV_COMPOSE} must join {', '.join(sorted(db_networks))}")
    front = backend & app_tier.get(FRONTEND_SERVICE, set())
    if not front:
        raise Abort(f"{FRONTEND_SERVICE!r} shares no network with {BACKEND_SERVICE!r}")
    own = (f"{', '.join(sorted(db_tier))} on {', '.join(sorted(db_networks - shared))}; " if db_tier else "")
    members = (f"{db_service}, {BACKEND_SERVICE} and {WORKER_SERVICE}"
               if app_tier.get(WORKER_SERVICE, set()) & db_networks else f"{db_service} and {BACKEND_SERVICE}")
    return (f"{', '.join(sorted(shared))}: {members} only; {own}"
            f"{FRONTEND_SERVICE} reaches {BACKEND_SERVICE} on {', '.join(sorted(front))}")


class Command(BaseCommand):
    help = "Verify that the backend uses the isolated PostgreSQL and has no database of its own."
    requires_system_checks = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)
        parser.add_argument("--only", nargs="+", choices=CHECKS, metavar="CHECK",
                            help=f"run these checks only: {', '.join(CHECKS)}")
        parser.add_argument("--compose-dir", type=Path,
                            help=f"directory holding {DEV_COMPOSE} and {DB_COMPOSE} "
                                 f"(default: {COMPOSE_MOUNT}, else the project root of this checkout)")

    def handle(self, *args: Any, database: str, compose_dir: Path | None, only: list[str] | None,
               **options: Any) -> None:
        self.alias = database
        self.compose_dir = compose_dir
        self.connection = connections[database]
        self.failures = 0
        self.total = 0
        checks: list[tuple[str, Callable[[], str]]] = [
            (title.format(service=settings.DB_SERVICE), getattr(self, f"verify_{key.replace('-', '_')}"))
            for key, title in CHECKS.items() if not only or key in only
        ]
        connected = True
        for title, check in checks:
            needs_db = check in (self.verify_migrations, self.verify_tables, self.verify_round_trip)
            if needs_db and not connected:
                self.report(False, title, "skipped: no connection to the database")
                continue
            try:
                detail = check()
            except Exception as exc:  # noqa: BLE001 -- every failure is a ❌ line, not a traceback
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                self.report(False, title, reason)
                if check == self.verify_connection:
                    connected = False
            else:
                self.report(True, title, detail)
        if self.failures:
            raise CommandError(f"{self.failures} of {self.total} architecture checks failed.")
        self.stdout.write(f"All {self.total} architecture checks passed.")

    def report(self, ok: bool, title: str, detail: str) -> None:
        self.total += 1
        if not ok:
            self.failures += 1
        line = f"{'✅' if ok else '❌'} {title}" + (f": {detail}" if detail else "")
        self.stdout.write(line)

    # -- the checks ---------------------------------------------------------
    def verify_engine(self) -> str:
        engine: str = self.connection.settings_dict["ENGINE"]
        if engine != POSTGRESQL_ENGINE or self.connection.vendor != "postgresql":
            raise Abort(f"ENGINE is {engine!r}")
        return engine

    def verify_host(self) -> str:
        host = self.connection.settings_dict["HOST"]
        if host != settings.DB_SERVICE:
            raise Abort(f"HOST is {host!r}, expected the service name {settings.DB_SERVICE!r} (DB_HOST)")
        return f"{host}:{self.connection.settings_dict['PORT']}"

    def verify_connection(self) -> str:
        with self.connection.cursor() as cursor:
            cursor.execute(
                "SELECT current_user, current_database(), host(inet_server_addr()), "
                "current_setting('server_version')"
            )
            row = cursor.fetchone()
        if row is None:
            raise Abort("the server answered no row")
        user, name, address, version = row
        return f"{user}@{name} on PostgreSQL {version} at {address or 'a Unix socket'}"

    def verify_migrations(self) -> str:
        executor = MigrationExecutor(self.connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if plan:
            pending = ", ".join(f"{migration.app_label}.{migration.name}" for migration, _ in plan[:5])
            raise Abort(f"{len(plan)} unapplied: {pending}{' ...' if len(plan) > 5 else ''} (run migrate)")
        applied = len(executor.loader.applied_migrations)
        return f"{applied} applied"

    def verify_tables(self) -> str:
        introspection = self.connection.introspection
        with self.connection.cursor() as cursor:
            existing = set(introspection.table_names(cursor))
        expected = set(introspection.django_table_names(only_existing=False, include_views=False))
        expected.add("django_migrations")
        missing = sorted(expected - existing)
        if missing:
            raise Abort(f"missing: {', '.join(missing)}")
        return f"{len(expected)} tables, e.g. personas_usuario, django_migrations"

    def verify_round_trip(self) -> str:
        from personas.models import Usuario

        username = f"verify-{uuid.uuid4().hex[:12]}"
        with transaction.atomic(using=self.alias):
            created = Usuario.objects.using(self.alias).create(username=username, email="verify@example.invalid")
            read = Usuario.objects.using(self.alias).get(pk=created.pk)
            if read.username != username:
                raise Abort("the row read back differs from the row written")
            transaction.set_rollback(True, using=self.alias)
        if Usuario.objects.using(self.alias).filter(username=username).exists():
            raise Abort("the rolled-back row is still there")
        return "INSERT + SELECT on personas_usuario, rolled back"

    def verify_no_file_db(self) -> str:
        found = file_databases(settings.BASE_DIR)
        if found:
            raise Abort(", ".join(map(str, found)))
        return f"none under {settings.BASE_DIR}"

    def verify_no_pg_data(self) -> str:
        roots = [*PG_SCAN_ROOTS, Path(settings.BASE_DIR)]
        if os.environ.get("PGDATA"):
            roots.append(Path(os.environ["PGDATA"]))
        found = postgres_data_dirs(roots)
        if found:
            raise Abort(", ".join(map(str, found)))
        return f"no {PG_DATA_ROOT}, no PG_VERSION file"

    def verify_networks(self) -> str:
        candidates = [self.compose_dir] if self.compose_dir else [COMPOSE_MOUNT, Path(settings.BASE_DIR).parent]
        directory = next((d for d in candidates if (d / DEV_COMPOSE).is_file()), None)
        if directory is None:
            raise Abort(f"{DEV_COMPOSE} not found in {' or '.join(map(str, candidates))} (pass --compose-dir)")
        db_compose = yaml.safe_load((directory / DB_COMPOSE).read_text())
        dev_compose = yaml.safe_load((directory / DEV_COMPOSE).read_text())
        return network_isolation(db_compose, dev_compose, settings.DB_SERVICE)
