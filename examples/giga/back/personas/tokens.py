"""The tokens of the links that account mails carry, made with Django's own
PasswordResetTokenGenerator: an HMAC (SECRET_KEY) of the account's state and
a timestamp. Nothing is stored; a token dies when the state it covers changes
(so each works once) or after settings.PASSWORD_RESET_TIMEOUT seconds.

- Password reset: Django's generator, which covers the password hash and
  last_login: setting the new password (or logging in) spends it.
- Email verification: a generator that covers the address and whether it is
  verified, so verifying spends it, and a change of address kills it. The key
  mailed is signed (django.core.signing) and carries the address it verifies,
  which is how a new address waits for its proof without being stored.
"""

from django.contrib.auth.tokens import PasswordResetTokenGenerator, default_token_generator
from django.core import signing
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from .models import Usuario

password_reset_token = default_token_generator


class EmailVerificationTokenGenerator(PasswordResetTokenGenerator):
    key_salt = "personas.tokens.EmailVerificationTokenGenerator"

    def _make_hash_value(self, user, timestamp):
        return f"{user.pk}\0{user.email}\0{user.email_verified}\0{timestamp}"


email_verification_token = EmailVerificationTokenGenerator()
VERIFICATION_SALT = "personas.tokens.verification-key"


# -- password reset: /reset/<uid>/<token> -------------------------------------
def encode_uid(user):
    return urlsafe_base64_encode(force_bytes(user.pk))


def user_from_uid(uid):
    """The active user of a reset link's uid, or None."""
    try:
        pk = int(force_str(urlsafe_base64_decode(uid)))
    except (TypeError, ValueError, OverflowError):
        return None
    return Usuario.objects.filter(pk=pk, is_active=True).first()


# -- email verification: /verify/<key> ----------------------------------------
def verification_key(user, email=None):
    """A key that verifies `email` (default: the user's own) for `user`."""
    payload = {"u": user.pk, "e": email or user.email, "t": email_verification_token.make_token(user)}
    return signing.dumps(payload, salt=VERIFICATION_SALT, compress=True)


def read_verification_key(key):
    """(user, email) of a valid, unspent, unexpired key; None otherwise."""
    try:
        payload = signing.loads(key, salt=VERIFICATION_SALT)
        user = Usuario.objects.filter(pk=int(payload["u"]), is_active=True).first()
        email, token = str(payload["e"]), str(payload["t"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    if user is None or not email_verification_token.check_token(user, token):
        return None
    return user, email
