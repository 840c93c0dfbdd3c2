"""The tokens of the links that account mails carry, made with Django's own
PasswordResetTokenGenerator: an HMAC (SECRET_KEY) of the account's state and
a timestamp. Nothing is stored; a token dies when the state it covers changes
(so each works once) or after settings.PASSWORD_RESET_TIMEOUT seconds.

- Password reset: Django's generator, which covers the password hash, the
  address and last_login: setting the new password (or logging in) spends it.
- Email verification: a generator that covers the address it verifies, the
  account's address and whether it is verified, its password hash and its
  last request to change the address. So verifying spends it, and a change
  of address, of password (by any path) or a newer change request kills it.
  The key mailed is signed (django.core.signing) and carries the address it
  verifies, which is how a new address waits for its proof without being stored.
"""

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.tokens import PasswordResetTokenGenerator, default_token_generator
from django.core import signing
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from .models import Usuario

password_reset_token = default_token_generator


class EmailVerificationTokenGenerator(PasswordResetTokenGenerator):
    """make_token(user) / check_token(user, token) for the address `email`."""

    key_salt = "personas.tokens.EmailVerificationTokenGenerator"

    def __init__(self, email: str) -> None:
        super().__init__()
        self.email = email

    def _make_hash_value(self, user: AbstractBaseUser, timestamp: int) -> str:
        if not isinstance(user, Usuario):
            raise TypeError(f"verification tokens are for Usuario, not {type(user).__name__}")
        state = (user.pk, self.email, user.email, user.email_verified, user.password,
                 user.email_change_requested_at, timestamp)
        return "\0".join(map(str, state))


VERIFICATION_SALT = "personas.tokens.verification-key"


# -- password reset: /reset/<uid>/<token> -------------------------------------
def encode_uid(user: Usuario) -> str:
    return urlsafe_base64_encode(force_bytes(user.pk))


def user_from_uid(uid: str) -> Usuario | None:
    """The active user of a reset link's uid, or None."""
    try:
        pk = int(force_str(urlsafe_base64_decode(uid)))
    except (TypeError, ValueError, OverflowError):
        return None
    return Usuario.objects.filter(pk=pk, is_active=True).first()


# -- email verification: /verify/<key> ----------------------------------------
def verification_key(user: Usuario, email: str | None = None) -> str:
    """A key that verifies `email` (default: the user's own) for `user`."""
    email = email or user.email
    payload = {"u": user.pk, "e": email, "t": EmailVerificationTokenGenerator(email).make_token(user)}
    return signing.dumps(payload, salt=VERIFICATION_SALT, compress=True)


def read_verification_key(key: str) -> tuple[Usuario, str] | None:
    """(user, email) of a valid, unspent, unexpired key; None otherwise."""
    try:
        payload = signing.loads(key, salt=VERIFICATION_SALT)
        user = Usuario.objects.filter(pk=int(payload["u"]), is_active=True).first()
        email, token = str(payload["e"]), str(payload["t"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    if user is None or not EmailVerificationTokenGenerator(email).check_token(user, token):
        return None
    return user, email
