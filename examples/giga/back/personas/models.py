"""The project's user model, stored in the isolated PostgreSQL as personas_usuario,
and the login and signup attempts that ratelimit.py counts."""

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.utils import timezone


class UsuarioManager(UserManager):
    """Usuario.objects: create_user() and create_superuser() hash the password
    and normalize the e-mail address.

        Usuario.objects.create_user("test", "test@test.com", "password123")
    """

    def create_user(self, username, email=None, password=None, **extra_fields):
        if not username:
            raise ValueError("create_user() needs a username")
        return super().create_user(username, email, password, **extra_fields)

    def create_superuser(self, username, email=None, password=None, **extra_fields):
        if not username:
            raise ValueError("create_superuser() needs a username")
        # An operator vouches for the address of an account made by command.
        extra_fields.setdefault("email_verified", True)
        return super().create_superuser(username, email, password, **extra_fields)


class Usuario(AbstractUser):
    """AUTH_USER_MODEL = "personas.Usuario". Django's user, in a table of ours,
    so that fields can be added later with a plain migration."""

    # Set when the owner follows a link mailed to `email` (or resets the
    # password by mail); settings.ACCOUNT_EMAIL_VERIFICATION says what it gates.
    email_verified = models.BooleanField(default=False)

    objects = UsuarioManager()

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        verbose_name = "usuario"
        verbose_name_plural = "usuarios"
        ordering = ["id"]

    def __str__(self):
        return self.username


class Attempt(models.Model):
    """One login or signup attempt, as ratelimit.py counts it: a hash of what
    it counts against (scope, client address or account) and when. Rows older
    than the longest window are deleted as new attempts come in."""

    key = models.CharField(max_length=64)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            models.Index(fields=["key", "at"], name="attempt_key_at_idx"),
            models.Index(fields=["at"], name="attempt_at_idx"),
        ]
