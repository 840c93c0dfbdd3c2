"""python manage.py wait_for_db [--migrated] [--timeout SECONDS] [--interval SECONDS]

The isolated database runs in another compose project, so `depends_on`
cannot order the start: the entrypoint waits here instead. Each attempt
really opens a connection (authentication included); each failure is logged
on one line; after --timeout seconds it gives up with exit status 1.
With --migrated it also waits until every migration is applied: the task
worker's queue is a table that `manage.py migrate` creates.
"""

import logging
import os
import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.migration import Migration
from django.db.utils import Error as DatabaseError

logger = logging.getLogger(__name__)


def unapplied(connection: BaseDatabaseWrapper) -> list[tuple[Migration, bool]]:
    executor = MigrationExecutor(connection)
    return executor.migration_plan(executor.loader.graph.leaf_nodes())


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Command(BaseCommand):
    help = "Wait until the database accepts a connection; exit 1 after --timeout seconds."
    requires_system_checks = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--timeout",
            type=float,
            default=float(os.environ.get("DB_WAIT_TIMEOUT", "60")),
            help="Give up after this many seconds (default: $DB_WAIT_TIMEOUT or 60).",
        )
        parser.add_argument("--interval", type=float, default=1.0, help="Seconds between attempts (default 1).")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Database alias (default: default).")
        parser.add_argument("--migrated", action="store_true", help="Also wait until no migration is unapplied.")

    def handle(self, *args: Any, timeout: float, interval: float, database: str, migrated: bool,
               **options: Any) -> None:
        connection = connections[database]
        params = connection.settings_dict
        target = f"{params['USER']}@{params['HOST']}:{params['PORT']}/{params['NAME']}"
        started = time.monotonic()
        deadline = started + timeout
        attempt = 0
        while True:
            attempt += 1
            try:
                connection.ensure_connection()
            except DatabaseError as exc:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CommandError(
                        f"wait_for_db: database {target} still unavailable after {attempt} attempt(s) "
                        f"in {timeout:g}s: {first_line(exc)}"
                    ) from exc
                logger.warning("wait_for_db: database %s unavailable (attempt %d, %.0fs left): %s",
                               target, attempt, remaining, first_line(exc))
                time.sleep(max(0.0, min(interval, remaining)))
            else:
                logger.info("wait_for_db: database %s is up (attempt %d, %.1fs)",
                            target, attempt, time.monotonic() - started)
                break
        try:
            while migrated and (pending := len(unapplied(connection))):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise CommandError(f"wait_for_db: {pending} migration(s) still unapplied after {timeout:g}s: "
                                       "run `python manage.py migrate`")
                logger.warning("wait_for_db: %d migration(s) unapplied (%.0fs left): "
                               "waiting for `python manage.py migrate`", pending, remaining)
                time.sleep(max(0.0, min(interval * 5, remaining)))
        finally:
            connection.close()
