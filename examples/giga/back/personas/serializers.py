"""Serializers of the API (docs/api-contract.md): its bodies, requests' and
responses', and the checks of what a request sends."""

import copy
from typing import Any, ClassVar

from django.conf import settings
from django.contrib.auth import authenticate, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.settings import api_settings

from . import tokens
from .models import Usuario

NOT_TEXT = "Not a valid string."
INVALID_RESET_LINK = "This password reset link is invalid, already used or expired. Ask for a new one."
INVALID_VERIFICATION_LINK = "This verification link is invalid, already used or expired. Ask for a new one."


def password_field(*, write_only: bool = False) -> serializers.CharField:
    # Long passphrases are welcome; the cap only bounds the hashing work.
    return serializers.CharField(
        write_only=write_only, max_length=1024, trim_whitespace=False, style={"input_type": "password"}
    )


def validated_new_password(password: str, user: Usuario) -> str:
    """AUTH_PASSWORD_VALIDATORS, with the user's own attributes."""
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(list(exc.messages)) from exc
    return password


class StrictFieldsMixin(serializers.Serializer[Any]):
    """A body key that is not a writable field is a 400, not silently ignored:
    {"non_field_errors": ["Unknown field(s): is_staff"]}. So is a text field
    sent as anything but a JSON string: DRF would turn 1e3 into "1000.0", a
    name that login and the rate limits would then read differently."""

    def to_internal_value(self, data: Any) -> Any:
        unknown: list[str] = []
        if hasattr(data, "keys"):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            unknown = sorted(str(key) for key in data if key not in writable)
            not_text = {
                name: [NOT_TEXT]
                for name, field in self.fields.items()
                if isinstance(field, serializers.CharField) and data.get(name) is not None
                and not isinstance(data.get(name), str)
            }
            if not_text:
                raise serializers.ValidationError(not_text)
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if unknown and isinstance(exc.detail, dict):
                errors = exc.detail.setdefault(api_settings.NON_FIELD_ERRORS_KEY, [])
                if isinstance(errors, list):
                    errors.insert(0, ErrorDetail(f"Unknown field(s): {', '.join(unknown)}", code="invalid"))
            raise
        if unknown:
            raise serializers.ValidationError(
                {api_settings.NON_FIELD_ERRORS_KEY: [f"Unknown field(s): {', '.join(unknown)}"]}
            )
        return value


class UsuarioSerializer(serializers.ModelSerializer[Usuario]):
    """The user object of every response."""

    email_verified = serializers.SerializerMethodField()
    # DRF builds a ModelSerializer's fields from the model on every use: a
    # fifth of an authenticated read's CPU. These are read-only and the same
    # for every response, so they are built once per process, then copied.
    _built_fields: ClassVar[dict[str, serializers.Field[Any, Any, Any, Any]] | None] = None

    class Meta:
        model = Usuario
        fields = ["id", "username", "email", "email_verified", "is_staff", "date_joined"]
        read_only_fields = fields

    def get_fields(self) -> dict[str, serializers.Field[Any, Any, Any, Any]]:
        cls = type(self)
        built = cls.__dict__.get("_built_fields")
        if built is None:
            built = cls._built_fields = super().get_fields()
        return copy.deepcopy(built)

    @extend_schema_field(serializers.BooleanField(allow_null=True))
    def get_email_verified(self, user: Usuario) -> bool | None:
        # null: this site does not verify addresses (ACCOUNT_EMAIL_VERIFICATION = "none").
        return None if settings.ACCOUNT_EMAIL_VERIFICATION == "none" else user.email_verified


class SignupSerializer(StrictFieldsMixin, serializers.ModelSerializer[Usuario]):
    email = serializers.EmailField(max_length=254)
    password = password_field(write_only=True)

    class Meta:
        model = Usuario
        fields = ["id", "username", "email", "password", "is_staff", "date_joined"]
        read_only_fields = ["id", "is_staff", "date_joined"]

    def validate_username(self, value: str) -> str:
        # Stored as login will look it up: `Ｂoss ` is boss, and taken if Boss is.
        value = Usuario.normalize_username(value)
        if Usuario.objects.with_username(value).exists():
            raise serializers.ValidationError("A user with that username already exists.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # Django's AUTH_PASSWORD_VALIDATORS, with the user's own attributes so
        # that a password like the username is refused too.
        candidate = Usuario(username=attrs.get("username", ""), email=attrs.get("email", ""))
        try:
            password_validation.validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": list(exc.messages)}) from exc
        return attrs

    def create(self, validated_data: dict[str, Any]) -> Usuario:
        return Usuario.objects.create_user(
            validated_data["username"], validated_data["email"], validated_data["password"]
        )

    def to_representation(self, instance: Usuario) -> dict[str, Any]:
        return UsuarioSerializer(instance, context=self.context).data


class LoginSerializer(StrictFieldsMixin):
    username = serializers.CharField(max_length=150)
    password = password_field()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        user = authenticate(
            request=self.context.get("request"), username=attrs["username"], password=attrs["password"]
        )
        if user is None:
            # The same words as DRF's own obtain_auth_token.
            raise serializers.ValidationError("Unable to log in with provided credentials.", code="authorization")
        attrs["user"] = user
        return attrs


class DetailSerializer(serializers.Serializer[Any]):
    """DRF's error body, and the answer of actions with nothing else to say."""

    detail = serializers.CharField()


class TokenSerializer(serializers.Serializer[Any]):
    token = serializers.CharField()
    expiry = serializers.DateTimeField()
    user = UsuarioSerializer()


# -- account flows (accounts.py) ------------------------------------------------
class EmailSerializer(StrictFieldsMixin):
    email = serializers.EmailField(max_length=254)


class PasswordResetConfirmSerializer(StrictFieldsMixin):
    uid = serializers.CharField(max_length=64)
    token = serializers.CharField(max_length=64)
    new_password = password_field()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        user = tokens.user_from_uid(attrs["uid"])
        if user is None or not tokens.password_reset_token.check_token(user, attrs["token"]):
            raise serializers.ValidationError(INVALID_RESET_LINK)
        try:
            validated_new_password(attrs["new_password"], user)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"new_password": exc.detail}) from exc
        attrs["user"] = user
        return attrs


class VerifyEmailSerializer(StrictFieldsMixin):
    key = serializers.CharField(max_length=1024)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        found = tokens.read_verification_key(attrs["key"])
        if found is None:
            raise serializers.ValidationError(INVALID_VERIFICATION_LINK)
        attrs["user"], attrs["email"] = found
        return attrs


class PasswordChangeSerializer(StrictFieldsMixin):
    old_password = password_field()
    new_password = password_field()

    def validate_old_password(self, value: str) -> str:
        if not self.context["request"].user.check_password(value):
            raise serializers.ValidationError("Your old password was entered incorrectly.")
        return value

    def validate_new_password(self, value: str) -> str:
        return validated_new_password(value, self.context["request"].user)


class EmailChangeSerializer(StrictFieldsMixin):
    email = serializers.EmailField(max_length=254)
    password = password_field()

    def validate_email(self, value: str) -> str:
        value = Usuario.objects.normalize_email(value)
        if value.casefold() == self.context["request"].user.email.casefold():
            raise serializers.ValidationError("This is already your address.")
        return value

    def validate_password(self, value: str) -> str:
        if not self.context["request"].user.check_password(value):
            raise serializers.ValidationError("Your password was entered incorrectly.")
        return value


class EmailChangeResponseSerializer(serializers.Serializer[Any]):
    detail = serializers.CharField()
    user = UsuarioSerializer()
