"""python manage.py worker_health [--max-delay SECONDS]

The worker service's healthcheck: exit 0 while the database answers and no
queued task has been due for longer than --max-delay seconds without a
worker taking it. A worker that hangs, or cannot keep up, turns unhealthy;
one that dies ends its container, which `restart:` brings back.
"""

from argparse import ArgumentParser
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q
from django.db.utils import Error as DatabaseError
from django.utils import timezone
from django_tasks_db.models import DBTaskResult, get_date_max


class Command(BaseCommand):
    help = "Exit 1 if the database is unreachable or a due task has waited longer than --max-delay seconds."
    requires_system_checks = []

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--max-delay", type=float, default=300.0,
                            help="Seconds a due task may wait for a worker (default 300).")

    def handle(self, *args: Any, max_delay: float, **options: Any) -> None:
        late = timezone.now() - timedelta(seconds=max_delay)
        try:
            # A task queued with no run_after is due from the moment it is queued.
            waiting = DBTaskResult.objects.ready().filter(
                Q(run_after__lte=late) | Q(run_after=get_date_max(), enqueued_at__lte=late)
            ).count()
        except DatabaseError as exc:
            raise CommandError(f"database unreachable: {str(exc).strip().splitlines()[0]}") from None
        if waiting:
            raise CommandError(f"{waiting} task(s) due for more than {max_delay:g}s: no worker is taking them")
        self.stdout.write("ok")
