"""Token authentication: django-rest-knox, with the token's format checked first.

Knox looks a token up by its first characters and hashes the rest. A value
that cannot be one of its tokens (control characters, non-hex bytes, another
length) is refused here with the usual 401, before it reaches a query: a NUL
byte would make PostgreSQL raise an error (a 500) instead.
"""

import re

from django.utils.translation import gettext_lazy as _
from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.settings import knox_settings
from rest_framework import exceptions


def _token_format():
    prefix = re.escape(knox_settings.TOKEN_PREFIX.encode())
    return re.compile(rb"%s[0-9a-f]{%d}" % (prefix, knox_settings.AUTH_TOKEN_CHARACTER_LENGTH))


class TokenAuthentication(KnoxTokenAuthentication):
    def authenticate_credentials(self, token):
        if not _token_format().fullmatch(token):
            raise exceptions.AuthenticationFailed(_("Invalid token."))
        return super().authenticate_credentials(token)


class TokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme: knox's, for this subclass."""

    target_class = TokenAuthentication
