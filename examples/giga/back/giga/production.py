"""
Production settings: the development settings, hardened.

    DJANGO_SETTINGS_MODULE=<package>.production

Required in the environment, on top of what settings.py requires
(DJANGO_SECRET_KEY, DB_PASSWORD): DJANGO_ALLOWED_HOSTS,
DJANGO_CSRF_TRUSTED_ORIGINS and EMAIL_URL.

Passes `python manage.py check --deploy --fail-level WARNING`.
"""

from .settings import *  # noqa: F403 -- every development setting, then the overrides below
from .settings import MIDDLEWARE, env, env_list, logging_config, mailer_from_url, required, required_list

DEBUG = False

# The admin's static files, collected into STATIC_ROOT when the image is built
# (hashed names, compressed), served by WhiteNoise right after SecurityMiddleware.
MIDDLEWARE = [*MIDDLEWARE]
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
                  "whitenoise.middleware.WhiteNoiseMiddleware")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# The public host name(s) and the backend's alias on the Docker network, from
# the environment. 127.0.0.1 is added for the image's own HEALTHCHECK.
ALLOWED_HOSTS = [*env_list("DJANGO_ALLOWED_HOSTS", required("DJANGO_ALLOWED_HOSTS")), "127.0.0.1"]
# The public origin(s) of the admin, e.g. https://api.example.com: no
# development fallback here.
CSRF_TRUSTED_ORIGINS = required_list("DJANGO_CSRF_TRUSTED_ORIGINS")

# ---------------------------------------------------------------------------
# HTTPS. The backend speaks plain HTTP behind a TLS-terminating reverse proxy
# that sets X-Forwarded-Proto (and removes any value a client sent).
# DJANGO_SECURE_PROXY=0 turns all of this off for a deployment without such
# a proxy; `check --deploy` then rightly warns.
# ---------------------------------------------------------------------------
if env.bool("DJANGO_SECURE_PROXY", True):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    # The API is not redirected: SvelteKit's server calls it over the internal
    # Docker network in plain HTTP (INTERNAL_API_URL) and authenticates with a
    # token, and the HEALTHCHECK calls /api/health/ on 127.0.0.1. The browser
    # never talks to /api/; it does reach /admin/, which is redirected.
    # Nor is /metrics, which Prometheus reads on the app network.
    SECURE_REDIRECT_EXEMPT = [r"^api/", r"^metrics$"]
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", 60 * 60 * 24 * 365)
    # Opt-in only: includeSubDomains forces HTTPS on every subdomain of this
    # host for a year, and preload asks browsers to ship that in their source
    # (removal takes months). Whoever owns the domain decides; `check
    # --deploy` is told that the choice was made.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", False)
    SILENCED_SYSTEM_CHECKS = [
        *([] if SECURE_HSTS_INCLUDE_SUBDOMAINS else ["security.W005"]),
        *([] if SECURE_HSTS_PRELOAD else ["security.W021"]),
    ]

# Swagger UI (/api/docs/) for staff logged in at /admin/ only, unless the
# team decides the API's documentation is public.
API_DOCS_PUBLIC = env.bool("DJANGO_API_DOCS_PUBLIC", False)

SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

# ---------------------------------------------------------------------------
# Email: a real SMTP server, e.g. EMAIL_URL=smtp+tls://user:password@smtp.example.com:587
# ---------------------------------------------------------------------------
MAILERS = {"default": mailer_from_url(required("EMAIL_URL"))}

# Errors (500s) are mailed to ADMINS (DJANGO_ADMIN_EMAIL) with the traceback,
# and logged; every line is JSON unless DJANGO_LOG_FORMAT says otherwise.
LOGGING = logging_config("json")
LOGGING = {
    **LOGGING,
    "filters": {
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
    },
    "handlers": {
        **LOGGING["handlers"],
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "level": "ERROR",
            "filters": ["require_debug_false"],
        },
    },
    "loggers": {
        **LOGGING["loggers"],
        "django.request": {"handlers": ["mail_admins"], "level": "ERROR", "propagate": True},
    },
}
