#!/bin/sh
# Entrypoint of the backend image: wait for the isolated database, optionally
# migrate, then run the command (granian, runserver, pytest, ...).
#
# The database lives in another compose project (db/), so nothing orders the
# start for us: wait_for_db retries a real connection, one log line per try,
# and exits non-zero after DB_WAIT_TIMEOUT seconds (compose then restarts us).
set -eu

# DJANGO_WAIT_FOR_MIGRATIONS=1 (the task worker, whose queue is a table):
# until `manage.py migrate` has run, too.
if [ "${DJANGO_WAIT_FOR_MIGRATIONS:-0}" = "1" ]; then
    python manage.py wait_for_db --migrated
elif [ "${DJANGO_WAIT_FOR_DB:-1}" = "1" ]; then
    python manage.py wait_for_db
fi

# Opt-in: the documented way is
#   docker exec <slug>_backend_dev python manage.py migrate
if [ "${DJANGO_MIGRATE_ON_START:-0}" = "1" ]; then
    python manage.py migrate --noinput
fi

# The metrics of the previous run's processes are not this run's.
if [ -n "${PROMETHEUS_MULTIPROC_DIR:-}" ]; then
    rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
fi

exec "$@"
