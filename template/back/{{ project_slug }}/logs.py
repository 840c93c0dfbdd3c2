"""Log lines: JSON in production, readable text in development, with the
request's id (bound by observability.RequestLogMiddleware) on every line
written while it runs, Django's and the libraries' own lines included.

Nothing here imports Django, so granian's main process can use `formatter`
too (GRANIAN_LOG_CONFIG, granian-logging.json).
"""

from __future__ import annotations

from typing import Any

import structlog

SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="time"),
]


def formatter(log_format: str = "json") -> structlog.stdlib.ProcessorFormatter:
    """A logging formatter that renders each record, structlog's or not, as
    one JSON object ("json") or one readable line ("plain")."""
    renderer: Any = (structlog.processors.JSONRenderer() if log_format == "json"
                     else structlog.dev.ConsoleRenderer(colors=False))
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


def configure(log_format: str, level: str) -> dict[str, Any]:
    """structlog's setup, and the LOGGING dict for Django."""
    structlog.configure(
        processors=[*SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structured": {"()": formatter, "log_format": log_format},
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "structured"},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Replaces Django's own console handler (DEBUG only), so each line is logged once.
            "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
            # The one line per request is RequestLogMiddleware's; Django's
            # own 4xx lines would repeat it (5xx keep their traceback).
            "django.request": {"level": "ERROR"},
            "django.server": {"level": "WARNING"},
            "django.db.backends": {"level": "WARNING"},
        },
    }
