"""The views of this package: the probes and Swagger UI (GET /api/docs/).

GET /api/health/live/ (liveness): the process answers. No database access at
all, so a database outage fails readiness only and restarts nothing.

GET /api/health/ (readiness): the isolated database answers and every
migration is applied; else 503 and the pod or container is taken out of the
traffic. The public (the image's HEALTHCHECK, SvelteKit, anyone) learns only
that: {"status": "ok"} or 503 {"status": "unavailable"}. The reason of a
failure (libpq's message names the host, address, port and role) goes to the
log; a staff token also gets the details in the answer.
"""

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.admin.views.decorators import staff_member_required
from django.db import DatabaseError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, HttpResponse
from drf_spectacular.utils import extend_schema, inline_serializer
from drf_spectacular.views import SpectacularSwaggerSplitView
from rest_framework import serializers, status
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from personas.models import Usuario

from .authentication import TokenAuthentication
from .db import checking_read

logger = logging.getLogger(__name__)

# A query waiting on a lock (e.g. a migration holding the users table) is
# cancelled after this long: the health check answers, it never hangs.
HEALTH_STATEMENT_TIMEOUT_MS = 2000

HEALTH_STATUSES = ["ok", "unavailable"]


class Migrations:
    """Whether every migration is applied. Once it is, that is remembered for
    the process (migrations are not unapplied under a running server): a
    healthy readiness check reads no migration files and asks nothing more
    than `SELECT 1` (the user count, for staff)."""

    all_applied = False

    @classmethod
    def pending(cls) -> list[str]:
        """The unapplied migrations ("app.name"), in the order migrate runs them."""
        if cls.all_applied:
            return []
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        cls.all_applied = not plan
        return [f"{migration.app_label}.{migration.name}" for migration, _ in plan]


def select_one() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def database_status(*, count_users: bool = False) -> tuple[bool, int | str | None]:
    """(True, number of users if asked, else None) or (False, reason). Never raises."""
    try:
        if Migrations.all_applied and not count_users:
            # The public's check once migrated: one round trip, on no table
            # that a migration could hold locked.
            checking_read(select_one)
            return True, None
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {HEALTH_STATEMENT_TIMEOUT_MS:d}")
            pending = Migrations.pending()
            users = Usuario.objects.count() if count_users and not pending else None
    except Exception as exc:  # noqa: BLE001 -- any failure is "unavailable", never a 500
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        logger.warning("Health check: database unavailable: %s", reason)
        return False, reason
    if pending:
        reason = f"{len(pending)} migration(s) unapplied: {', '.join(pending[:5])}{' ...' if len(pending) > 5 else ''}"
        logger.warning("Health check: not ready: %s (run migrate)", reason)
        return False, reason
    return True, users


def is_staff(request: Request) -> bool:
    """A valid staff token, if any; a missing or bad one is just the public."""
    try:
        result = TokenAuthentication().authenticate(request)
    except (AuthenticationFailed, DatabaseError):
        return False
    return bool(result and result[0].is_staff)


class LiveView(APIView):
    """Liveness: answered by the process alone, whatever the database does."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Liveness: the backend process answers",
        description="No token needed. Never touches the database: a database outage fails readiness "
                    "(GET /api/health/) only, so an orchestrator restarts no backend for it.",
        responses={200: inline_serializer("Live", {"status": serializers.CharField(help_text='Always "ok".')})},
    )
    def get(self, request: Request) -> Response:
        return Response({"status": "ok"})


class HealthView(APIView):
    """Readiness: the database answers and every migration is applied."""

    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Readiness: the database answers and every migration is applied",
        description='No token needed; a staff token also gets "database" and "users". '
                    "503 while the database is unreachable or a migration is unapplied.",
        # Optional: an invalid token is the public, never a 401.
        # drf-spectacular types `auth` as scheme names; it takes requirement objects too.
        auth=[{"knoxApiToken": []}, {}],  # type: ignore[list-item]
        responses={
            200: inline_serializer("Health", {
                "status": serializers.ChoiceField(HEALTH_STATUSES),
                "database": serializers.CharField(required=False, help_text='Staff only: "ok".'),
                "users": serializers.IntegerField(required=False, help_text="Staff only."),
            }),
            503: inline_serializer("HealthUnavailable", {"status": serializers.ChoiceField(HEALTH_STATUSES)}),
        },
    )
    def get(self, request: Request) -> Response:
        staff = is_staff(request)
        ok, result = database_status(count_users=staff)
        if not ok:
            # The reason is in the log, for staff too: the answer is the same for all.
            return Response({"status": "unavailable"}, status=status.HTTP_503_SERVICE_UNAVAILABLE)
        body: dict[str, Any] = {"status": "ok"}
        if staff:
            body.update(database="ok", users=result)
        return Response(body)


class SwaggerView(SpectacularSwaggerSplitView):
    """Swagger UI, from the backend's own static files (drf-spectacular-sidecar);
    its script is a second request and its inline style carries the CSP nonce
    (settings.SECURE_CSP)."""

    template_name = "api_docs.html"


swagger: Callable[[HttpRequest], HttpResponse] = SwaggerView.as_view(url_name="schema")
staff_swagger = staff_member_required(swagger)


def api_docs(request: HttpRequest) -> HttpResponse:
    """GET /api/docs/: for anyone if settings.API_DOCS_PUBLIC, else for staff
    logged in at /admin/ (anyone else is sent there to log in first)."""
    return (swagger if settings.API_DOCS_PUBLIC else staff_swagger)(request)
