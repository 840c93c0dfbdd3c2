"""Account flows (docs/api-contract.md): password reset by mail, email
verification, and changing the password or the address while logged in.

The links' tokens are Django's own (tokens.py); the mails are in mails.py,
and tasks.py sends them, off the request path.
What verification gates is settings.ACCOUNT_EMAIL_VERIFICATION:
  mandatory  no login until the address is verified (LoginView refuses it);
  optional   log in at once, the address shows as unverified until verified;
  none       no verification mail; a changed address replaces the old at once.
"""

from django.conf import settings
from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from giga.exceptions import ERROR, error_responses

from . import tasks
from .auth import AuthenticatedRequest
from .ratelimit import PublicRateLimitedView, RateLimitedView, limit_mail_to
from .serializers import (
    DetailSerializer,
    EmailChangeResponseSerializer,
    EmailChangeSerializer,
    EmailSerializer,
    PasswordChangeSerializer,
    PasswordResetConfirmSerializer,
    UsuarioSerializer,
    VerifyEmailSerializer,
)

RESET_MAILED = "If an account uses this address, a link to reset its password is on its way."
VERIFICATION_MAILED = "If an account with this address awaits verification, a new link is on its way."
VERIFICATION_OFF = "This site does not verify email addresses."


def verification_on() -> bool:
    return settings.ACCOUNT_EMAIL_VERIFICATION != "none"


class PasswordResetView(PublicRateLimitedView):
    """POST /api/auth/password/reset/ {"email"} -> 202, whether or not an
    account uses the address (no account enumeration)."""

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


class PasswordResetConfirmView(PublicRateLimitedView):
    """POST /api/auth/password/reset/confirm/ {"uid", "token", "new_password"}
    -> 200. The new password logs every session of the account out
    (models.Usuario.save), and the address is verified: the link reached it."""

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


class VerifyEmailView(PublicRateLimitedView):
    """POST /api/auth/email/verify/ {"key"} -> 200: the address the key was
    mailed to is the account's, verified. If it replaces another, that one is
    told (models.Usuario.save)."""

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


class ResendVerificationView(PublicRateLimitedView):
    """POST /api/auth/email/verify/resend/ {"email"} -> 202, whether or not an
    account awaits verification at the address."""

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


class PasswordChangeView(RateLimitedView):
    """POST /api/auth/password/change/ {"old_password", "new_password"} -> 200.
    Every other session (token) of the account is logged out, and every
    pending change of address is cancelled: whoever else knew the old
    password must not keep a way in."""

    permission_classes = [IsAuthenticated]
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


class EmailChangeView(RateLimitedView):
    """POST /api/auth/email/change/ {"email", "password"} -> 200. With
    verification on, the new address is mailed a link and replaces the old
    one only when it is followed: until then the account keeps an address
    that is proven to reach its owner (a typo cannot take password resets
    away), and that address is told of the request. A newer request, or a
    new password, kills the link. With verification off, it replaces the old
    one at once, and the old one is told."""

    permission_classes = [IsAuthenticated]
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
