"""JSON errors: `{"detail": "..."}` for the API, whatever went wrong."""

import logging
from typing import Any

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from drf_spectacular.utils import OpenApiResponse
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus: the database being unreachable is a 503, not a 500."""
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.warning("Database unavailable during %s: %s", context["request"].path, exc)
        return Response(
            {"detail": "The database is unavailable; try again shortly."},
            status=status.HTTP_503_SERVICE_UNAVAILABLE,
        )
    return exception_handler(exc, context)


def _is_api(request: HttpRequest) -> bool:
    return request.path == "/api" or request.path.startswith("/api/")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Not found."}, status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse({"detail": "Internal server error."}, status=500)
    return defaults.server_error(request)


# ---------------------------------------------------------------------------
# The same bodies, for the OpenAPI schema (components in SPECTACULAR_SETTINGS)
# ---------------------------------------------------------------------------
ERROR_DESCRIPTIONS = {
    400: "Invalid input: the messages per field.",
    401: "No valid token (missing, malformed, expired or revoked).",
    403: "The token's user may not do this (staff only).",
    404: "No such object (or page).",
    429: "Too many attempts; the Retry-After header says how many seconds to wait.",
    503: "The database is unavailable; try again shortly.",
}


ERROR = {"$ref": "#/components/schemas/Error"}
VALIDATION_ERROR = {"$ref": "#/components/schemas/ValidationError"}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """extend_schema(responses=...) entries for these error status codes."""
    return {
        code: OpenApiResponse(
            response=VALIDATION_ERROR if code == 400 else ERROR,
            description=ERROR_DESCRIPTIONS[code],
        )
        for code in codes
    }
