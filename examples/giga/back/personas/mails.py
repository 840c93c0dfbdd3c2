"""The account mails: plain text, short, from DEFAULT_FROM_EMAIL, with a link
to the frontend's page (settings.FRONTEND_URL) that calls the API.

A mail that cannot be sent is logged, never raised: the answer of the request
that sent it must not depend on it (a password reset answers the same for
every address), and the user can ask for another.
"""

import logging
import smtplib
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone
from django.utils.timesince import timeuntil

from . import tokens

logger = logging.getLogger(__name__)


def _lifetime():
    now = timezone.now()
    return timeuntil(now + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT), now)


def _send(to, subject, body):
    message = EmailMessage(f"[{settings.PROJECT_NAME}] {subject}", body, settings.DEFAULT_FROM_EMAIL, [to])
    try:
        message.send()
    except (smtplib.SMTPException, OSError) as exc:
        # The reason is enough (an unreachable or refusing server): no traceback.
        logger.error("Could not send %r to %s: %s", subject, to, exc)


def send_password_reset(user):
    link = f"{settings.FRONTEND_URL}/reset/{tokens.encode_uid(user)}/{tokens.password_reset_token.make_token(user)}"
    _send(
        user.email,
        "Reset your password",
        f"Hello {user.get_username()},\n\n"
        f"Someone (you, we hope) asked to reset the password of your account. Set a new one here:\n\n"
        f"{link}\n\n"
        f"The link works once, for {_lifetime()}. If you did not ask, ignore this mail: "
        "your password stays as it is.\n",
    )


def send_verification(user, email=None):
    """Mail `email` (default: the user's own) a link that verifies it."""
    to = email or user.email
    link = f"{settings.FRONTEND_URL}/verify/{tokens.verification_key(user, to)}"
    _send(
        to,
        "Verify your email address",
        f"Hello {user.get_username()},\n\n"
        f"Follow this link to confirm that {to} is your address:\n\n"
        f"{link}\n\n"
        f"The link works once, for {_lifetime()}. If you did not sign up or change your address, "
        "ignore this mail.\n",
    )
