"""python manage.py db_worker: django-tasks-db's worker (same options), which
outlives a restart of the database as the backend does.

Its loop gives up on the first failed query, and under the autoreloader
(DEBUG) that leaves a process that runs but works no more. Here the loop
waits and starts again instead. This app comes before django_tasks_db in
INSTALLED_APPS, so this command is the one `manage.py db_worker` runs.
"""

import logging
import os
import time
from typing import Any

from django.db.utils import OperationalError
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV, run_with_reloader
from django_tasks_db.management.commands import db_worker

logger = logging.getLogger(__name__)

RETRY_SECONDS = 5


class Worker(db_worker.Worker):
    def run(self) -> None:
        while self.running:
            try:
                super().run()
            except OperationalError as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                logger.warning("Database unavailable (%s); the worker tries again in %ss", reason, RETRY_SECONDS)
                time.sleep(RETRY_SECONDS)
            else:
                return


class Command(db_worker.Command):
    def handle(self, *, verbosity: int, queue_name: str, interval: float, batch: bool, backend_name: str,
               startup_delay: bool, reload: bool, max_tasks: int | None, worker_id: str, exclude_queues: str,
               **options: Any) -> None:
        self.configure_logging(verbosity)
        worker = Worker(queue_names=queue_name.split(","), interval=interval, batch=batch,
                        backend_name=backend_name, startup_delay=startup_delay, max_tasks=max_tasks,
                        worker_id=worker_id, excluded_queue_names=exclude_queues.split(",") if exclude_queues else [])
        if reload and not batch:
            if os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":
                worker.configure_signals()  # in the reloader's child only
            run_with_reloader(worker.run)
        else:
            worker.configure_signals()
            worker.run()
