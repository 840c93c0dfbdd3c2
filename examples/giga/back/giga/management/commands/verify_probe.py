"""python manage.py verify_probe create | delete <username>

For the checklist's "data written through the backend is in the isolated
database" (scripts/verify): `create` commits a user with a random name and
prints the name, for psql in the database container to read back; `delete`
removes it again, and accepts only names `create` makes.
"""

import re
import uuid
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from personas.models import Usuario

PREFIX = "verify-probe-"
PROBE_NAME = re.compile(PREFIX + "[0-9a-f]{12}")


class Command(BaseCommand):
    help = "Create (and print) or delete the probe user of scripts/verify."
    requires_system_checks = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("action", choices=["create", "delete"])
        parser.add_argument("username", nargs="?", help="the name `create` printed (delete only)")

    def handle(self, *args: Any, action: str, username: str | None, **options: Any) -> None:
        if action == "create":
            username = f"{PREFIX}{uuid.uuid4().hex[:12]}"
            # No password: the probe can never log in, even if it were left behind.
            Usuario.objects.create_user(username, email="probe@example.invalid")
            self.stdout.write(username)
            return
        if not username or not PROBE_NAME.fullmatch(username):
            raise CommandError(f"delete takes a probe's name ({PREFIX}<12 hex digits>), got {username!r}")
        deleted, _ = Usuario.objects.filter(username=username).delete()
        if not deleted:
            raise CommandError(f"no user {username!r}")
        self.stdout.write(f"deleted {username}")
