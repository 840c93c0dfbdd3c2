"""WSGI entry point: `granian giga.wsgi:application` (see the Dockerfile)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "giga.settings")

application = get_wsgi_application()
