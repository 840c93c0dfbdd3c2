"""URLs: the admin, and the API of docs/api-contract.md under /api/ (its
OpenAPI schema at /api/schema/, Swagger UI at /api/docs/)."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView

from personas.ratelimit import limit_admin_login

from .exceptions import not_found
from .observability import metrics
from .views import HealthView, LiveView, api_docs

urlpatterns = [
    # Before admin.site.urls, which has its own (unlimited) login/.
    path("admin/login/", limit_admin_login(admin.site.login)),
    path("admin/", admin.site.urls),
    path("api/health/", HealthView.as_view(), name="health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", api_docs, name="api-docs"),
    # Liveness: the process answers (api/health/ above is readiness).
    path("api/health/live/", LiveView.as_view(), name="health-live"),
    path("api/", include("personas.urls")),
    # Any other /api path, whatever the method: a JSON 404, with DEBUG on too.
    # CSRF-exempt, or an unsafe method would get the HTML CSRF 403 first; and
    # routed, so /api/x (no slash) is not redirected to /api/x/ either.
    re_path(r"^api(/|$)", csrf_exempt(not_found)),
    # Prometheus's, on the app network only: Caddy and the ingress route
    # nothing but /api, /admin and /static here.
    path("metrics", metrics, name="metrics"),
]

handler404 = f"{__package__}.exceptions.not_found"
handler500 = f"{__package__}.exceptions.server_error"
