"""URLs: the admin, and the API of docs/api-contract.md under /api/."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from .views import HealthView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/health/", HealthView.as_view(), name="health"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/", include("personas.urls")),
]

handler404 = f"{__package__}.exceptions.not_found"
handler500 = f"{__package__}.exceptions.server_error"
