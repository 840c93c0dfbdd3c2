"""Account flows (docs/api-contract.md): password reset by mail, email
verification, and changing the password or the address while logged in.

The links' tokens are Django's own (tokens.py); the mails are in mails.py,
and tasks.py sends them, off the request path.
What verification gates is settings.ACCOUNT_EMAIL_VERIFICATION:
  mandatory  no login until the address is verified (LoginView refuses it);
  optional   log in at once, the address shows as unverified until verified;
  none       no verification mail; a changed address replaces the old at once.
"""

from typing import Any

from django.conf import settings
from django.contrib.auth import password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from giga.exceptions import ERROR, error_responses

from . import tasks, tokens
from .auth import AuthenticatedRequest
from .models import Usuario
from .ratelimit import AttemptThrottle, limit_mail_to
from .serializers import DetailSerializer, StrictFieldsMixin, UsuarioSerializer

INVALID_RESET_LINK = "This password reset link is invalid, already used or expired. Ask for a new one."
INVALID_VERIFICATION_LINK = "This verification link is invalid, already used or expired. Ask for a new one."
RESET_MAILED = "If an account uses this address, a link to reset its password is on its way."
VERIFICATION_MAILED = "If an account with this address awaits verification, a new link is on its way."
VERIFICATION_OFF = "This site does not verify email addresses."


def verification_on() -> bool:
    return settings.ACCOUNT_EMAIL_VERIFICATION != "none"


def password_field() -> serializers.CharField:
    # Long passphrases are welcome; the cap only bounds the hashing work.
    return serializers.CharField(max_length=1024, trim_whitespace=False, style={"input_type": "password"})


def validated_new_password(password: str, user: Usuario) -> str:
    """AUTH_PASSWORD_VALIDATORS, with the user's own attributes."""
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(list(exc.messages)) from exc
    return password


# -- serializers ----------------------------------------------------------------
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


# -- views --------------------------------------------------------------------
class PasswordResetView(APIView):
    """POST /api/auth/password/reset/ {"email"} -> 202, whether or not an
    account uses the address (no account enumeration)."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [AttemptThrottle]
    rate_limit_scope = "mail"
    rate_limit_field = "email"

    @extend_schema(request=EmailSerializer, responses={202: DetailSerializer, **error_responses(400, 429, 503)})
    def post(self, request: Request) -> Response:
        serializer = EmailSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        # Whether an account uses the address is the worker's business: this
        # answer takes the same time either way.
        tasks.mail_password_reset.enqueue(email=serializer.validated_data["email"])
        return Response({"detail": RESET_MAILED}, status=status.HTTP_202_ACCEPTED)


class PasswordResetConfirmView(APIView):
    """POST /api/auth/password/reset/confirm/ {"uid", "token", "new_password"}
    -> 200. The new password logs every session of the account out
    (models.Usuario.save), and the address is verified: the link reached it."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [AttemptThrottle]
    rate_limit_scope = "login"
    rate_limit_field = "uid"

    @extend_schema(
        request=PasswordResetConfirmSerializer,
        responses={200: DetailSerializer, **error_responses(400, 429, 503)},
    )
    def post(self, request: Request) -> Response:
        serializer = PasswordResetConfirmSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        user.set_password(serializer.validated_data["new_password"])
        user.email_verified = True
        user.save(update_fields=["password", "email_verified"])
        return Response({"detail": "Your password was reset. Log in with the new one."})


class VerifyEmailView(APIView):
    """POST /api/auth/email/verify/ {"key"} -> 200: the address the key was
    mailed to is the account's, verified. If it replaces another, that one is
    told (models.Usuario.save)."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [AttemptThrottle]
    rate_limit_scope = "login"
    rate_limit_field = None  # per client: the key names no account before it is checked

    @extend_schema(request=VerifyEmailSerializer, responses={200: DetailSerializer, **error_responses(400, 429, 503)})
    def post(self, request: Request) -> Response:
        serializer = VerifyEmailSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user, email = serializer.validated_data["user"], serializer.validated_data["email"]
        user.email, user.email_verified = email, True
        user.save(update_fields=["email", "email_verified"])
        return Response({"detail": f"Your email address {email} is verified."})


class ResendVerificationView(APIView):
    """POST /api/auth/email/verify/resend/ {"email"} -> 202, whether or not an
    account awaits verification at the address."""

    authentication_classes = []
    permission_classes = [AllowAny]
    throttle_classes = [AttemptThrottle]
    rate_limit_scope = "mail"
    rate_limit_field = "email"

    @extend_schema(
        request=EmailSerializer,
        responses={
            202: DetailSerializer,
            **error_responses(400, 429, 503),
            404: OpenApiResponse(ERROR, description="Email verification is off (ACCOUNT_EMAIL_VERIFICATION)."),
        },
    )
    def post(self, request: Request) -> Response:
        if not verification_on():
            raise NotFound(VERIFICATION_OFF)
        serializer = EmailSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tasks.mail_verification.enqueue(email=serializer.validated_data["email"])
        return Response({"detail": VERIFICATION_MAILED}, status=status.HTTP_202_ACCEPTED)


class PasswordChangeView(APIView):
    """POST /api/auth/password/change/ {"old_password", "new_password"} -> 200.
    Every other session (token) of the account is logged out, and every
    pending change of address is cancelled: whoever else knew the old
    password must not keep a way in."""

    permission_classes = [IsAuthenticated]
    throttle_classes = [AttemptThrottle]
    rate_limit_scope = "login"

    @extend_schema(
        request=PasswordChangeSerializer,
        responses={200: DetailSerializer, **error_responses(400, 401, 429, 503)},
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        serializer = PasswordChangeSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        user = request.user
        user.set_password(serializer.validated_data["new_password"], keep_token=request.auth)
        user.save(update_fields=["password"])
        return Response({"detail": "Your password was changed. Your other sessions were logged out."})


class EmailChangeView(APIView):
    """POST /api/auth/email/change/ {"email", "password"} -> 200. With
    verification on, the new address is mailed a link and replaces the old
    one only when it is followed: until then the account keeps an address
    that is proven to reach its owner (a typo cannot take password resets
    away), and that address is told of the request. A newer request, or a
    new password, kills the link. With verification off, it replaces the old
    one at once, and the old one is told."""

    permission_classes = [IsAuthenticated]
    throttle_classes = [AttemptThrottle]
    rate_limit_scope = "login"

    @extend_schema(
        request=EmailChangeSerializer,
        responses={200: EmailChangeResponseSerializer, **error_responses(400, 401, 429, 503)},
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        serializer = EmailChangeSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        user, email = request.user, serializer.validated_data["email"]
        limit_mail_to(request, email)
        if verification_on():
            with transaction.atomic():
                user.request_email_change()
                tasks.mail_verification.enqueue(email=email, user_id=user.pk)
                tasks.mail_email_change_requested.enqueue(user_id=user.pk, new_email=email)
            detail = f"We sent a link to {email}. Your address changes when you follow it."
        else:
            user.email, user.email_verified = email, False
            user.save(update_fields=["email", "email_verified"])
            detail = f"Your address is now {email}."
        return Response({"detail": detail, "user": UsuarioSerializer(user).data})
