"""The project's user model, stored in the isolated PostgreSQL as personas_usuario,
and the login and signup attempts that ratelimit.py counts."""

from typing import Any, ClassVar, Self, overload

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models, transaction
from django.db.models import Value
from django.db.models.functions import Lower
from django.db.models.lookups import Exact
from django.utils import timezone
from knox.models import AuthToken


class UsuarioQuerySet(models.QuerySet["Usuario"]):
    """Names and addresses are matched the way people mean them: without
    regard to case, Unicode compatibility forms folded (ＢＯＳＳ is boss),
    spaces around them dropped. Login, signup, the rate limits and the mails
    all use these lookups, so no spelling of a name counts as another account."""

    def with_username(self, username: object) -> Self:
        return self.filter(Exact(Lower("username"), Lower(Value(self.model.normalize_username(str(username))))))

    def with_email(self, email: object) -> Self:
        return self.filter(Exact(Lower("email"), Lower(Value(str(email).strip()))))


class UsuarioManager(UserManager["Usuario"]):
    """Usuario.objects: create_user() and create_superuser() hash the password
    and normalize the username and the e-mail address.

        Usuario.objects.create_user("test", "test@test.com", "password123")

    Its querysets are UsuarioQuerySets, and it offers their lookups too.
    """

    def get_queryset(self) -> UsuarioQuerySet:
        return UsuarioQuerySet(self.model, using=self._db)

    def with_username(self, username: object) -> UsuarioQuerySet:
        return self.get_queryset().with_username(username)

    def with_email(self, email: object) -> UsuarioQuerySet:
        return self.get_queryset().with_email(email)

    def get_by_natural_key(self, username: str | None) -> "Usuario":
        # What ModelBackend (the API's and the admin's login) and createsuperuser look up.
        return self.with_username(username).get()

    def create_user(self, username: str, email: str | None = None, password: str | None = None,
                    **extra_fields: Any) -> "Usuario":
        if not username:
            raise ValueError("create_user() needs a username")
        return super().create_user(username, email, password, **extra_fields)

    def create_superuser(self, username: str, email: str | None = None, password: str | None = None,
                         **extra_fields: Any) -> "Usuario":
        if not username:
            raise ValueError("create_superuser() needs a username")
        # An operator vouches for the address of an account made by command.
        extra_fields.setdefault("email_verified", True)
        return super().create_superuser(username, email, password, **extra_fields)


class Usuario(AbstractUser):
    """AUTH_USER_MODEL = "personas.Usuario". Django's user, in a table of ours,
    so that fields can be added later with a plain migration.

    Whoever changes the password (the API, the admin, `manage.py
    changepassword`, any set_password()), every token of the account dies,
    and so does every pending email-change link (tokens.py covers the
    password hash). Whoever changes the address, the old one is told."""

    # Set when the owner follows a link mailed to `email` (or resets the
    # password by mail); settings.ACCOUNT_EMAIL_VERIFICATION says what it gates.
    email_verified = models.BooleanField(default=False)
    # When the owner last asked to move the account to another address: the
    # links mailed before it die (tokens.py covers it).
    email_change_requested_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects: ClassVar[UsuarioManager] = UsuarioManager()

    # The password given to set_password(), until the next save() (Django's
    # AbstractBaseUser keeps it; django-stubs does not declare it).
    _password: str | None
    # The stored address and password hash, as loaded or last saved.
    _stored: dict[str, str | None]
    _kept_token: AuthToken | None

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        verbose_name = "usuario"
        verbose_name_plural = "usuarios"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                Lower("username"),
                name="personas_usuario_username_ci_uniq",
                violation_error_message="A user with that username already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.username

    # Anything that is not a string (a JSON number sent as a username) is left
    # for validation to refuse.
    @overload
    @classmethod
    def normalize_username(cls, username: str) -> str: ...
    @overload
    @classmethod
    def normalize_username(cls, username: object) -> object: ...
    @classmethod
    def normalize_username(cls, username: object) -> object:
        return super().normalize_username(username).strip() if isinstance(username, str) else username

    @classmethod
    def from_db(cls, *args: Any, **kwargs: Any) -> Self:
        user = super().from_db(*args, **kwargs)
        user._stored = {name: user.__dict__.get(name) for name in ("email", "password")}
        return user

    def set_password(self, raw_password: str | None, *, keep_token: AuthToken | None = None) -> None:
        """keep_token: the one knox token that survives the change (the
        session of an owner who changed it through the API)."""
        super().set_password(raw_password)
        self._kept_token = keep_token

    def request_email_change(self) -> None:
        self.email_change_requested_at = timezone.now()
        self.save(update_fields=["email_change_requested_at"])

    def save(self, *args: Any, **kwargs: Any) -> None:
        stored, fields = getattr(self, "_stored", {}), kwargs.get("update_fields")
        # set_password() was called, or the password was made unusable; the
        # hash upgrade that a login may do is not a change.
        password_changed = (fields is None or "password" in fields) and not self._state.adding and (
            self._password is not None
            or (stored.get("password") not in (None, self.password) and not self.has_usable_password())
        )
        old_email = stored.get("email") if fields is None or "email" in fields else None
        kept = getattr(self, "_kept_token", None)
        with transaction.atomic():
            super().save(*args, **kwargs)
            if password_changed:
                AuthToken.objects.filter(user=self).exclude(pk=getattr(kept, "pk", None)).delete()
            if old_email and old_email != self.email:
                from . import tasks

                tasks.mail_email_changed.enqueue(user_id=self.pk, old_email=old_email)
        self._stored = {"email": self.email, "password": self.password}
        self._kept_token = None


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

    def __str__(self) -> str:
        return f"{self.key[:12]}… at {self.at:%Y-%m-%d %H:%M:%S}"
