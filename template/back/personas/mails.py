"""The account mails: plain text, short, from DEFAULT_FROM_EMAIL, with a link
to the frontend's page (settings.FRONTEND_URL) that calls the API. Each
function builds one message; tasks.py sends it, off the request path.
"""

from collections.abc import Callable, Sequence
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils import timezone
from django.utils.timesince import timeuntil

from . import tokens
from .models import Usuario


def _lifetime() -> str:
    now = timezone.now()
    return timeuntil(now + timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT), now)


def _message(to: str, subject: str, body: str) -> EmailMessage:
    return EmailMessage(f"[{settings.PROJECT_NAME}] {subject}", body, settings.DEFAULT_FROM_EMAIL, [to])


def _accounts(users: Sequence[Usuario], link: Callable[[Usuario], str]) -> str:
    """The link, or, when several accounts share the address, each account's."""
    if len(users) == 1:
        return link(users[0])
    return "\n\n".join(f"{user.get_username()}:\n{link(user)}" for user in users)


def password_reset(users: Sequence[Usuario]) -> EmailMessage:
    """One mail to the address that `users` share."""

    def link(user: Usuario) -> str:
        return f"{settings.FRONTEND_URL}/reset/{tokens.encode_uid(user)}/{tokens.password_reset_token.make_token(user)}"

    return _message(
        users[0].email,
        "Reset your password",
        "Hello,\n\n"
        "Someone (you, we hope) asked to reset the password of your account. Set a new one here:\n\n"
        f"{_accounts(users, link)}\n\n"
        f"The link works once, for {_lifetime()}. If you did not ask, ignore this mail: "
        "your password stays as it is.\n",
    )


def verification(users: Sequence[Usuario], to: str) -> EmailMessage:
    """One mail to `to`, with a link that makes it the address of each of `users`."""

    def link(user: Usuario) -> str:
        return f"{settings.FRONTEND_URL}/verify/{tokens.verification_key(user, to)}"

    return _message(
        to,
        "Verify your email address",
        "Hello,\n\n"
        f"Follow this link, then confirm, to make {to} the address of your account:\n\n"
        f"{_accounts(users, link)}\n\n"
        f"The link works once, for {_lifetime()}. If you did not sign up or change your address, "
        "ignore this mail.\n",
    )


def email_change_requested(user: Usuario, new_email: str) -> EmailMessage:
    """To the address the account still has: someone asked to move it."""
    return _message(
        user.email,
        "Your address is about to change",
        f"Hello {user.get_username()},\n\n"
        f"Someone logged in to your account asked to change its address to {new_email}. "
        "It changes when a link we mailed there is followed.\n\n"
        "If this was not you, change your password now: that cancels the request "
        f"and logs every session out. For help, write to {settings.ADMIN_EMAIL}.\n",
    )


def email_changed(user: Usuario, old_email: str) -> EmailMessage:
    """To the address the account had: it is no longer its address."""
    return _message(
        old_email,
        "Your address has changed",
        f"Hello {user.get_username()},\n\n"
        f"The address of your account is now {user.email}, no longer {old_email}.\n\n"
        f"If this was not you, write to {settings.ADMIN_EMAIL} at once.\n",
    )
