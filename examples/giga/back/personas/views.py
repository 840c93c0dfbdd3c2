"""/api/auth/... and /api/users/... (docs/api-contract.md)."""

from typing import Any

from django.conf import settings
from django.contrib.auth.models import update_last_login
from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from knox.models import AuthToken
from rest_framework import generics, status
from rest_framework.exceptions import NotAuthenticated, PermissionDenied, ValidationError
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView

from giga.exceptions import ERROR, error_responses

from . import tasks
from .auth import AuthenticatedRequest
from .models import Usuario
from .ratelimit import PublicRateLimitedView, limit_mail_to
from .serializers import LoginSerializer, SignupSerializer, TokenSerializer, UsuarioSerializer

EMAIL_NOT_VERIFIED = (
    "Verify your email address before logging in: follow the link in the mail we sent you, "
    "or ask for a new one."
)


class SignupView(PublicRateLimitedView, generics.CreateAPIView[Usuario]):
    """POST /api/auth/signup/ -> 201 user; mails a verification link unless
    ACCOUNT_EMAIL_VERIFICATION is "none"."""

    rate_limit_scope = "signup"
    serializer_class = SignupSerializer

    @extend_schema(auth=[], responses={201: UsuarioSerializer, **error_responses(400, 429, 503)})
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().post(request, *args, **kwargs)

    def perform_create(self, serializer: BaseSerializer[Usuario]) -> None:
        verifying = settings.ACCOUNT_EMAIL_VERIFICATION != "none"
        if verifying:
            limit_mail_to(self.request, serializer.validated_data["email"])
        try:
            with transaction.atomic():
                user = serializer.save()
                if verifying:
                    tasks.mail_verification.enqueue(email=user.email, user_id=user.pk)
        except IntegrityError:
            # Two signups raced for the same username past the validator.
            raise ValidationError({"username": ["A user with that username already exists."]}) from None


class LoginView(PublicRateLimitedView):
    """POST /api/auth/login/ -> 200 {"token", "expiry", "user"}: a new token
    per login (one per browser), valid REST_KNOX["TOKEN_TTL"]. 403 while the
    address is unverified, if ACCOUNT_EMAIL_VERIFICATION is "mandatory"."""

    rate_limit_scope = "login"

    @extend_schema(request=LoginSerializer, auth=[], responses={
        200: TokenSerializer,
        **error_responses(400, 429, 503),
        403: OpenApiResponse(ERROR, description="The password is right but the address is not verified yet "
                                                "(ACCOUNT_EMAIL_VERIFICATION = mandatory)."),
    })
    def post(self, request: Request) -> Response:
        serializer = LoginSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        # Only once the password is right: nobody else learns the account's state.
        if settings.ACCOUNT_EMAIL_VERIFICATION == "mandatory" and not user.email_verified:
            raise PermissionDenied(EMAIL_NOT_VERIFIED)
        AuthToken.objects.filter(user=user, expiry__lt=timezone.now()).delete()
        instance, token = AuthToken.objects.create(user)
        update_last_login(Usuario, user)
        return Response({"token": token, "expiry": instance.expiry, "user": UsuarioSerializer(user).data})


class LogoutView(APIView):
    """POST /api/auth/logout/ -> 204; this token is revoked (the user's other
    sessions keep theirs)."""

    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses={204: None, **error_responses(401, 503)})
    def post(self, request: AuthenticatedRequest) -> Response:
        request.auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeView(generics.RetrieveAPIView[Usuario]):
    """GET /api/auth/me/ -> 200 user."""

    permission_classes = [IsAuthenticated]
    serializer_class = UsuarioSerializer

    @extend_schema(responses={200: UsuarioSerializer, **error_responses(401, 503)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    def get_object(self) -> Usuario:
        user = self.request.user
        if not isinstance(user, Usuario):  # IsAuthenticated let only users in
            raise NotAuthenticated
        return user


class UsuarioListView(generics.ListAPIView[Usuario]):
    """GET /api/users/?page=N -> paginated users, staff only."""

    permission_classes = [IsAdminUser]
    serializer_class = UsuarioSerializer
    queryset = Usuario.objects.order_by("id")

    @extend_schema(responses={200: UsuarioSerializer(many=True), **error_responses(401, 403, 404, 503)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class UsuarioDetailView(generics.RetrieveAPIView[Usuario]):
    """GET /api/users/<id>/ -> user, staff only."""

    permission_classes = [IsAdminUser]
    serializer_class = UsuarioSerializer
    queryset = Usuario.objects.all()

    @extend_schema(responses={200: UsuarioSerializer, **error_responses(401, 403, 404, 503)})
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
