"""
Django settings of the giga backend: development defaults.

The backend has NO database of its own. Every byte of data lives in the
isolated PostgreSQL of db/ (service `giga-db` on the Docker network
`giga_dev_network`); this process only connects to it.

Every value comes from the environment, which `docker compose` builds from
back/.env (env_file: secrets and the team's settings) and the backend's
`environment:` in docker-compose.dev.yml (the values derived from the
template's answers). Django never reads the .env file itself: compose's
quoting rules ($$, \", ...) are the only ones that apply.

Production: giga/production.py imports this module and hardens it.
"""

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP
from environs import Env

from . import logs, observability

# environs: values are taken verbatim (variable expansion is off by default),
# so a password starting with "$" is a password, not a reference.
env = Env(expand_vars=False)

BASE_DIR = Path(__file__).resolve().parent.parent

# The isolated database's compose service: the only host this backend may use.
# `manage.py verify_architecture` checks DATABASES["default"]["HOST"] against it.
DB_SERVICE = "giga-db"


def required(name: str) -> str:
    """The value of environment variable `name`; fail fast, naming it, if missing or empty."""
    value = os.environ.get(name, "")
    if not value:
        raise ImproperlyConfigured(
            f"The environment variable {name} is not set. It comes from back/.env "
            "(see back/.env.example); with docker compose it is passed by env_file."
        )
    return value


def env_list(name: str, default: str) -> list[str]:
    """A comma-separated list from the environment, blanks removed."""
    return [item.strip() for item in env.str(name, default).split(",") if item.strip()]


def required_list(name: str) -> list[str]:
    """env_list(name) with no default: fail fast, naming it, if it lists nothing."""
    items = env_list(name, "")
    if not items:
        raise ImproperlyConfigured(
            f"The environment variable {name} lists nothing. With docker compose it comes "
            "from the backend's environment in docker-compose.dev.yml (see back/README.md)."
        )
    return items


# ---------------------------------------------------------------------------
# Core
# ---------------------------------------------------------------------------
SECRET_KEY = required("DJANGO_SECRET_KEY")
DEBUG = env.bool("DJANGO_DEBUG", False)

# The backend's alias on the Docker network: SvelteKit's server calls
# http://giga-backend:8000/api/... with that Host header.
ALLOWED_HOSTS = env_list(
    "DJANGO_ALLOWED_HOSTS", "giga-backend,localhost,127.0.0.1"
)
CSRF_TRUSTED_ORIGINS = env_list(
    "DJANGO_CSRF_TRUSTED_ORIGINS", "http://localhost:5173,http://localhost:8000"
)

# Every API call comes from SvelteKit's server, which sends the browser's
# address in X-Forwarded-For. That header is believed only from these hosts
# (names are resolved with DNS, so the frontend's alias on the Docker network
# works; addresses and networks in CIDR notation are taken as written); from
# anyone else REMOTE_ADDR is the client. DJANGO_INGRESS_PROXIES adds the
# networks of a proxy that sends /api/ and /admin/ straight here (Kubernetes:
# the ingress controller's pods, deploy/k8s). See personas/ratelimit.py.
TRUSTED_PROXIES = [
    *env_list("DJANGO_TRUSTED_PROXIES", "giga-frontend"),
    *env_list("DJANGO_INGRESS_PROXIES", ""),
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "drf_spectacular",
    # Swagger UI's files, served from STATIC_URL like the admin's: no CDN.
    "drf_spectacular_sidecar",
    # This package is also an app: health view, system checks, wait_for_db,
    # verify_architecture.
    "giga",
    # Django's tasks, queued in the isolated database: the `worker` service
    # (`manage.py db_worker`, the project package's version of its command,
    # above) sends the account mails.
    "django_tasks_db",
    "personas",
]

MIDDLEWARE = [
    # First: the request id, and one log line per request whatever answers it.
    "giga.observability.RequestLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "giga.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.csp",
            ],
        },
    },
]

WSGI_APPLICATION = "giga.wsgi.application"

# ---------------------------------------------------------------------------
# Database: the isolated PostgreSQL, and nothing else
# ---------------------------------------------------------------------------
# Persistent connections (CONN_MAX_AGE) spare each request a TCP handshake and
# a SCRAM login; CONN_HEALTH_CHECKS replaces a dead one, so the backend recovers
# by itself when giga-db restarts (on the readiness check and token lookups, their
# own first read is that check: db.py). DB_POOL=1 uses psycopg's pool instead (ASGI,
# or more threads than connections), which waits its timeout while the DB is down.
DB_POOL = env.bool("DB_POOL", False)
DB_CONNECT_TIMEOUT = env.int("DB_CONNECT_TIMEOUT", 3)

DATABASES: dict[str, dict[str, Any]] = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": env.str("DB_HOST", DB_SERVICE),
        "PORT": env.int("DB_PORT", 5432),
        "NAME": env.str("DB_NAME", "giga"),
        "USER": env.str("DB_USER", "giga_user"),
        "PASSWORD": required("DB_PASSWORD"),
        "CONN_MAX_AGE": 0 if DB_POOL else env.int("DB_CONN_MAX_AGE", 600),
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            # libpq gives up on an unreachable server after this many seconds,
            # so /api/health/ answers 503 instead of hanging.
            "connect_timeout": DB_CONNECT_TIMEOUT,
            "application_name": "giga-backend",
        },
    }
}
if DB_POOL:
    DATABASES["default"]["OPTIONS"]["pool"] = {
        "min_size": env.int("DB_POOL_MIN_SIZE", 2),
        # Per worker process: its number of threads (GRANIAN_BLOCKING_THREADS) is enough.
        "max_size": env.int("DB_POOL_MAX_SIZE", 4),
        # A request waits at most this long for a connection, then fails (503).
        "timeout": DB_CONNECT_TIMEOUT,
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "personas.Usuario"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# ---------------------------------------------------------------------------
# Internationalization
# ---------------------------------------------------------------------------
LANGUAGE_CODE = env.str("DJANGO_LANGUAGE_CODE", "en-us")
TIME_ZONE = env.str("TZ", "UTC")
USE_I18N = True
USE_TZ = True

# ---------------------------------------------------------------------------
# Static files (the admin's): runserver serves them in development;
# production.py adds WhiteNoise, and the production image runs collectstatic.
# ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

# Content-Security-Policy of every response (the admin's and the API docs'
# pages; the API answers JSON): scripts, styles and images from this origin
# only, nothing inline but what a page marks with the request's nonce.
SECURE_CSP = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF],
    "style-src": [CSP.SELF, CSP.NONCE],
    "img-src": [CSP.SELF, "data:"],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

# ---------------------------------------------------------------------------
# Email: EMAIL_URL, e.g. smtp+tls://user:password@smtp.example.com:587
# (smtp://, smtp+tls:// for STARTTLS, smtps:// for implicit TLS, console://).
# ---------------------------------------------------------------------------
ADMIN_EMAIL = env.str("DJANGO_ADMIN_EMAIL", "admin@giga.localhost")
ADMINS = [ADMIN_EMAIL]
MANAGERS = ADMINS
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", ADMIN_EMAIL)
SERVER_EMAIL = DEFAULT_FROM_EMAIL


def mailer_from_url(url: str) -> dict[str, Any]:
    """A MAILERS entry from an EMAIL_URL."""
    from urllib.parse import unquote, urlsplit

    parts = urlsplit(url)
    if parts.scheme == "console":
        return {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
    schemes: dict[str, dict[str, bool]] = {
        "smtp": {},
        "smtp+tls": {"use_tls": True},
        "smtps": {"use_ssl": True},
    }
    if parts.scheme not in schemes:
        raise ImproperlyConfigured(
            f"EMAIL_URL must start with smtp://, smtp+tls://, smtps:// or console:// (got {parts.scheme}://)"
        )
    options: dict[str, Any] = {
        "host": parts.hostname or "localhost",
        "port": parts.port or {"smtp": 25, "smtp+tls": 587, "smtps": 465}[parts.scheme],
        "timeout": 10,
        **schemes[parts.scheme],
    }
    if parts.username:
        options["username"] = unquote(parts.username)
        options["password"] = unquote(parts.password or "")
    return {"BACKEND": "django.core.mail.backends.smtp.EmailBackend", "OPTIONS": options}


MAILERS = {"default": mailer_from_url(env.str("EMAIL_URL", "console://"))}

# Background tasks (personas/tasks.py: the account mails) wait in the
# isolated database until the worker runs them: no broker to run.
TASKS = {
    "default": {"BACKEND": "django_tasks_db.DatabaseBackend"},
}

# ---------------------------------------------------------------------------
# REST API (docs/api-contract.md)
# ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    # SvelteKit's server sends `Authorization: Token <key>`. Token auth alone,
    # so a request without credentials gets 401 (not 403) and no CSRF applies.
    # django-rest-knox: tokens expire and only their hash is stored.
    "DEFAULT_AUTHENTICATION_CLASSES": ["giga.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # JSON only: a form-encoded body gets 415 with a reason.
    "DEFAULT_PARSER_CLASSES": ["giga.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "giga.exceptions.api_exception_handler",
}

# Tokens live DJANGO_TOKEN_TTL_HOURS (24: a stolen token is useless by the
# next day, and a user logs in at most once a day), then answer 401; logging
# out revokes one at once. SvelteKit's session cookie gets the same lifetime
# from the login response's "expiry".
REST_KNOX = {
    "TOKEN_TTL": timedelta(hours=env.int("DJANGO_TOKEN_TTL_HOURS", 24)),
    "AUTH_HEADER_PREFIX": "Token",
}

# Brute-force limits of login (API and admin), signup and the account flows, "<attempts>/<period>"
# (period: s, min, hour or day), counted per client address and per account
# (the username tried) in this database, so that every server process shares
# them. The account limit holds however many addresses an attacker has.
RATE_LIMITS = {
    "login_client": env.str("DJANGO_RATE_LOGIN_CLIENT", "20/min"),
    "login_account": env.str("DJANGO_RATE_LOGIN_ACCOUNT", "5/min"),
    "signup_client": env.str("DJANGO_RATE_SIGNUP_CLIENT", "20/hour"),
    "signup_account": env.str("DJANGO_RATE_SIGNUP_ACCOUNT", "5/min"),
    # Requests that mail an address (password reset, verification again),
    # per client and per address: the app must not become a mail cannon.
    "mail_client": env.str("DJANGO_RATE_MAIL_CLIENT", "20/hour"),
    "mail_account": env.str("DJANGO_RATE_MAIL_ACCOUNT", "5/hour"),
}

# ---------------------------------------------------------------------------
# Accounts (personas/accounts.py): email verification and mailed links
# ---------------------------------------------------------------------------
PROJECT_NAME = "Giga"
# mandatory: no login until the address is verified; optional: log in at
# once, the address shows as unverified until its link is followed; none:
# no verification mail.
ACCOUNT_EMAIL_VERIFICATION = "optional"
# The frontend's public origin: the links in account mails open its pages
# (/reset/<uid>/<token>, /verify/<key>), which call this API.
FRONTEND_URL = env.str("FRONTEND_URL", "http://localhost:5173").rstrip("/")
# A mailed link (password reset, email verification) works once, for this long.
PASSWORD_RESET_TIMEOUT = env.int("DJANGO_ACCOUNT_LINK_HOURS", 24) * 3600

# The OpenAPI schema (/api/schema/, public: it is the contract every client
# codes against, and tells nothing the API itself does not) and Swagger UI
# (/api/docs/). front/src/lib/api/schema.d.ts is generated from the schema:
# `make api-types` after changing the API.
json_string = {"type": "string"}
SPECTACULAR_SETTINGS = {
    "TITLE": "Giga API",
    "DESCRIPTION": "REST API of the backend; the data lives in the isolated PostgreSQL.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Separate request and response components (e.g. SignupRequest, Usuario):
    # a generated client then knows which fields it sends and which it gets.
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "SWAGGER_UI_SETTINGS": {"persistAuthorization": False, "displayOperationId": False},
    # The bodies of giga.exceptions.api_exception_handler's answers.
    "APPEND_COMPONENTS": {
        "schemas": {
            "Error": {
                "type": "object",
                "properties": {
                    "detail": {"type": "string"},
                },
                "required": ["detail"],
            },
            "ValidationError": {
                "type": "object",
                "description": 'Per field (or "non_field_errors"), its messages; '
                'a body that is not JSON gets {"detail": "JSON parse error - ..."}.',
                "additionalProperties": {
                    "oneOf": [
                        {"type": "array", "items": json_string},
                        json_string,
                    ],
                },
            },
        }
    },
}

# Swagger UI for anyone (development), or for staff logged in at /admin/ only
# (the default when DEBUG is off; production.py).
API_DOCS_PUBLIC = env.bool("DJANGO_API_DOCS_PUBLIC", DEBUG)

# ---------------------------------------------------------------------------
# Logging: everything to stdout/stderr, i.e. `docker logs giga_backend_dev`:
# readable lines here, JSON lines in production (DJANGO_LOG_FORMAT), each with
# the request's id while one runs (observability.py).
# ---------------------------------------------------------------------------
def logging_config(default_format: str) -> dict[str, Any]:
    """LOGGING in DJANGO_LOG_FORMAT (plain or json), at DJANGO_LOG_LEVEL."""
    log_format = env.str("DJANGO_LOG_FORMAT", default_format)
    if log_format not in ("plain", "json"):
        raise ImproperlyConfigured(f"DJANGO_LOG_FORMAT is {log_format!r}; it must be plain or json.")
    return logs.configure(log_format, env.str("DJANGO_LOG_LEVEL", "INFO"))


LOGGING = logging_config("plain")

# Error tracking: set SENTRY_DSN to send unexpected errors (the request id
# attached, no personal data) to Sentry or a compatible service; unset, the
# SDK is not even imported.
observability.start_error_tracking(env.str("SENTRY_DSN", ""), env.str("SENTRY_ENVIRONMENT", ""))
