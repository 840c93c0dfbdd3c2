"""The framework floor of tests/benchmarks/bench_serving.py: Django itself,
with no middleware, no installed app, no database and no DRF, answering
GET /api/health/ with the rendered backend's bytes from a plain view. No
Django backend can answer faster on this machine: the share of the bare
limit this reaches bounds the share any Django endpoint can.

    granian --interface wsgi --workers 2 --blocking-threads 4 harness.django_floor:app
"""

from __future__ import annotations

import django
from django.conf import settings
from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, HttpResponse
from django.urls import path

HEALTH = b'{"status":"ok"}'


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse(HEALTH, content_type="application/json")


settings.configure(DEBUG=False, SECRET_KEY="django-floor", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
                   MIDDLEWARE=[], INSTALLED_APPS=[], DATABASES={}, USE_I18N=False)
urlpatterns = [path("api/health/", health)]
django.setup()
app = get_wsgi_application()
