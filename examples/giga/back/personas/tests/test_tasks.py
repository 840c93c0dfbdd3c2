"""The account mails go through the task queue in the isolated database:
the request only queues them, and `manage.py db_worker` (the worker
service) sends them, trying again later when the mail server fails."""

import io
import logging
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from rest_framework.test import APIClient

from personas import tasks

# The worker commits as it goes, as it does in production: no test transaction around it.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def queue_in_database(settings):
    settings.TASKS = {
        "default": {"BACKEND": "django_tasks_db.DatabaseBackend"},
    }


def work():
    """What the worker service does, until the queue holds nothing due."""
    call_command("db_worker", "--batch", "--no-startup-delay", "--interval", "0", verbosity=0)


def test_a_reset_is_queued_by_the_request_and_sent_by_the_worker(user, mailoutbox):
    response = APIClient().post("/api/auth/password/reset/", {"email": user.email}, format="json")
    assert response.status_code == 202
    queued = DBTaskResult.objects.get()
    assert queued.task_path == "personas.tasks.mail_password_reset"
    assert queued.args_kwargs["kwargs"] == {"email": user.email}
    assert not mailoutbox
    work()
    assert [message.to for message in mailoutbox] == [[user.email]]
    assert DBTaskResult.objects.get().status == "SUCCESSFUL"


def test_an_unknown_address_queues_the_same_task_and_mails_nothing(db, mailoutbox):
    response = APIClient().post("/api/auth/password/reset/", {"email": "nobody@example.com"}, format="json")
    assert response.status_code == 202
    assert DBTaskResult.objects.get().task_path == "personas.tasks.mail_password_reset"
    work()
    assert not mailoutbox


@pytest.fixture
def refusing_mail_server(settings):
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": 9, "timeout": 2},  # nothing listens on discard
        },
    }


def test_a_failed_send_is_logged_and_tried_again_later(user, refusing_mail_server, caplog):
    before = timezone.now()
    with caplog.at_level(logging.WARNING, logger="personas.tasks"):
        tasks.mail_password_reset.enqueue(email=user.email)
        work()
    assert "Could not send" in caplog.text and "try 2 of 5" in caplog.text
    retry = DBTaskResult.objects.get(status="READY")
    assert retry.args_kwargs["kwargs"] == {"email": user.email, "attempt": 2}
    assert retry.run_after >= before + tasks.retry_delay(1) - timedelta(seconds=1)


def test_the_last_try_gives_up_with_an_error(user, refusing_mail_server, caplog):
    with caplog.at_level(logging.WARNING, logger="personas.tasks"):
        tasks.mail_password_reset.enqueue(email=user.email, attempt=tasks.ATTEMPTS)
        work()
    assert "gave up after 5 tries" in caplog.text
    assert not DBTaskResult.objects.filter(status="READY").exists()


def test_retries_back_off():
    assert [tasks.retry_delay(n) for n in range(1, tasks.ATTEMPTS)] == [
        timedelta(minutes=1), timedelta(minutes=4), timedelta(minutes=16), timedelta(minutes=64)]


def test_the_worker_healthcheck_turns_unhealthy_when_due_tasks_wait(user):
    call_command("worker_health", stdout=io.StringIO())
    tasks.mail_password_reset.enqueue(email=user.email)
    call_command("worker_health", stdout=io.StringIO())  # just queued: not late
    DBTaskResult.objects.update(enqueued_at=timezone.now() - timedelta(minutes=10))
    with pytest.raises(CommandError, match="1 task"):
        call_command("worker_health", stdout=io.StringIO())
    work()
    call_command("worker_health", stdout=io.StringIO())
