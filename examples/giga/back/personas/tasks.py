"""Every account mail is sent by a task (django.tasks), never by the request
that asks for it: a slow or failing mail server neither holds a worker nor
shows in the answer's timing, which would tell an attacker which addresses
have accounts. The tasks wait in the isolated PostgreSQL (django_tasks_db),
and the `worker` service runs them (`python manage.py db_worker`).

A task gets ids and addresses, never a link: the link is made when the mail
goes out, from the account's state at that moment. A send that fails is
logged and tried again later, ATTEMPTS times in all.
"""

import logging
import smtplib
from datetime import timedelta
from typing import Any

from django.core.mail import EmailMessage
from django.tasks import Task, task
from django.utils import timezone

from . import mails
from .models import Usuario, UsuarioQuerySet

logger = logging.getLogger(__name__)

ATTEMPTS = 5


def retry_delay(attempt: int) -> timedelta:
    """1, 4, 16, 64 minutes after the 1st, 2nd, 3rd and 4th failure."""
    return timedelta(minutes=4 ** (attempt - 1))


def deliver(mail_task: Task[..., None], message: EmailMessage, attempt: int, **arguments: Any) -> None:
    try:
        message.send()
    except (smtplib.SMTPException, OSError) as exc:
        # The reason is enough (an unreachable or refusing server): no traceback.
        subject, to = message.subject, ", ".join(message.to)
        if attempt < ATTEMPTS and mail_task.get_backend().supports_defer:
            delay = retry_delay(attempt)
            logger.warning("Could not send %r to %s (%s); try %d of %d in %s",
                           subject, to, exc, attempt + 1, ATTEMPTS, delay)
            mail_task.using(run_after=timezone.now() + delay).enqueue(**arguments, attempt=attempt + 1)
        else:
            logger.error("Could not send %r to %s (%s); gave up after %d tries", subject, to, exc, attempt)


def _active() -> UsuarioQuerySet:
    return Usuario.objects.get_queryset().filter(is_active=True).order_by("pk")


@task
def mail_password_reset(email: str, attempt: int = 1) -> None:
    """One mail to the address, whatever the number of accounts that use it."""
    users = [user for user in _active().with_email(email) if user.has_usable_password()]
    if users:
        deliver(mail_password_reset, mails.password_reset(users), attempt, email=email)


@task
def mail_verification(email: str, user_id: int | None = None, attempt: int = 1) -> None:
    """A link that verifies `email` for the account `user_id` (a new address,
    or the one it signed up with); without `user_id`, for every account at
    `email` that awaits verification."""
    if user_id is None:
        users = list(_active().with_email(email).filter(email_verified=False))
    else:
        users = list(_active().filter(pk=user_id))
    if users:
        # To the address as the account spells it, not as the request did.
        to = email if user_id else users[0].email
        deliver(mail_verification, mails.verification(users, to), attempt, email=email, user_id=user_id)


@task
def mail_email_change_requested(user_id: int, new_email: str, attempt: int = 1) -> None:
    user = _active().filter(pk=user_id).first()
    if user is not None:
        deliver(mail_email_change_requested, mails.email_change_requested(user, new_email), attempt,
                user_id=user_id, new_email=new_email)


@task
def mail_email_changed(user_id: int, old_email: str, attempt: int = 1) -> None:
    user = Usuario.objects.filter(pk=user_id).first()
    if user is not None:
        deliver(mail_email_changed, mails.email_changed(user, old_email), attempt,
                user_id=user_id, old_email=old_email)
