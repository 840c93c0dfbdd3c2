"""Token authentication: django-rest-knox, with the token's format checked first.

Knox looks a token up by its first characters and hashes the rest. A value
that cannot be one of its tokens (control characters, non-hex bytes, another
length) is refused here with the usual 401, before it reaches a query: a NUL
byte would make PostgreSQL raise an error (a 500) instead.

Knox also loads every token of the user on each request, to delete the
expired ones. Here a request deletes only its own token once expired; the
user's other expired tokens go at their next login (personas.views.LoginView).
That is one query less on every authenticated request, and the lookup is
the connection's health check too (db.checking_read): one more.
"""

import re

from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.models import AuthToken
from knox.settings import knox_settings
from knox.signals import token_expired
from rest_framework import exceptions

from personas.models import Usuario

from .db import checking_read

HEX = re.compile(rb"[0-9a-f]+")


def could_be_a_token(value: bytes) -> bool:
    """The shape of what knox hands out: TOKEN_PREFIX, then lowercase hex."""
    prefix = knox_settings.TOKEN_PREFIX.encode()
    key = value[len(prefix):]
    return (value.startswith(prefix) and len(key) == knox_settings.AUTH_TOKEN_CHARACTER_LENGTH
            and HEX.fullmatch(key) is not None)


class TokenAuthentication(KnoxTokenAuthentication):
    def authenticate_credentials(self, token: bytes) -> tuple[Usuario, AuthToken]:
        if not could_be_a_token(token):
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        def lookup() -> tuple[Usuario, AuthToken]:
            user, auth_token = super(TokenAuthentication, self).authenticate_credentials(token)
            return user, auth_token

        # Knox's lookup is a request's first query: it stands for the connection's check.
        return checking_read(lookup)

    def _cleanup_token(self, auth_token: AuthToken) -> bool:
        """Whether this token has expired, deleting it then (knox's signal included)."""
        if auth_token.expiry is None or auth_token.expiry >= timezone.now():
            return False
        username = auth_token.user.get_username()
        auth_token.delete()
        token_expired.send(sender=type(self), username=username, source="auth_token")
        return True


class TokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme: knox's, for this subclass."""

    # By import path, as drf-spectacular's own extensions name their targets.
    target_class = f"{__name__}.TokenAuthentication"
