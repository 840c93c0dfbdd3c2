"""personas' system checks."""

from collections.abc import Sequence
from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.db import connections

DUPLICATES = """
SELECT lower(username), string_agg(format('%s (id %s)', username, id), ', ' ORDER BY id)
FROM personas_usuario GROUP BY lower(username) HAVING count(*) > 1 ORDER BY 1
"""


def check_usernames_unique_ignoring_case(app_configs: Sequence[AppConfig] | None = None,
                                         databases: Sequence[str] | None = None,
                                         **kwargs: Any) -> list[checks.CheckMessage]:
    """Before migration 0005 makes usernames unique without regard to case:
    names that differ only in case are reported, so that `migrate` stops
    with this list instead of failing halfway. Runs with `migrate` and
    `check --database default`."""
    errors: list[checks.CheckMessage] = []
    for alias in databases or []:
        connection = connections[alias]
        if "personas_usuario" not in connection.introspection.table_names():
            continue
        with connection.cursor() as cursor:
            cursor.execute(DUPLICATES)
            duplicates = cursor.fetchall()
        for _, accounts in duplicates:
            errors.append(checks.Error(
                f"Usernames that differ only in case: {accounts}.",
                hint="Usernames are unique without regard to case: rename all of them but one "
                     "(in the admin, or `manage.py shell`), then run `manage.py migrate` again.",
                id="personas.E001",
            ))
    return errors
