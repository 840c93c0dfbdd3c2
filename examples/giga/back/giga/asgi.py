"""ASGI entry point, for an ASGI server if you ever need one (the image serves WSGI)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "giga.settings")

application = get_asgi_application()
