"""GET /api/health/: the backend is up and the isolated database answers."""

import logging

from django.conf import settings
from django.db import connection, transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from personas.models import Usuario

logger = logging.getLogger(__name__)

# A query waiting on a lock (e.g. a migration holding the users table) is
# cancelled after this long: the health check answers, it never hangs.
HEALTH_STATEMENT_TIMEOUT_MS = 2000


def database_status():
    """(True, number of users) or (False, reason). Never raises."""
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL statement_timeout = {HEALTH_STATEMENT_TIMEOUT_MS:d}")
            return True, Usuario.objects.count()
    except Exception as exc:  # noqa: BLE001 -- any failure is "unavailable", never a 500
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        database = settings.DATABASES["default"]
        logger.warning("Health check: database %s:%s unavailable: %s", database["HOST"], database["PORT"], reason)
        return False, reason


class HealthView(APIView):
    authentication_classes = []
    permission_classes = [AllowAny]

    @extend_schema(
        summary="Backend and database health",
        responses={
            200: inline_serializer(
                "Health",
                {
                    "status": serializers.CharField(),
                    "database": serializers.CharField(),
                    "users": serializers.IntegerField(),
                },
            ),
            503: inline_serializer(
                "HealthUnavailable",
                {
                    "status": serializers.CharField(),
                    "database": serializers.CharField(),
                    "detail": serializers.CharField(),
                },
            ),
        },
    )
    def get(self, request):
        ok, result = database_status()
        if ok:
            return Response({"status": "ok", "database": "ok", "users": result})
        return Response(
            {"status": "unavailable", "database": "unreachable", "detail": result},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
