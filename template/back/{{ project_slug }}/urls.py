"""URLs: the admin, and the API of docs/api-contract.md under /api/."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView

from .exceptions import not_found
from .views import HealthView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/health/", HealthView.as_view(), name="health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/", include("personas.urls")),
    # Any other /api/ path: a JSON 404, with DEBUG on too.
    re_path(r"^api/", not_found),
]

handler404 = f"{__package__}.exceptions.not_found"
handler500 = f"{__package__}.exceptions.server_error"
