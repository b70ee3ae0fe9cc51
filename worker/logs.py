"""Structured logging: one event per line, key=value (or coloured on a terminal), to stderr."""

from __future__ import annotations

import logging
import os
import sys

import structlog

__all__ = ["LOG_LEVEL_ENV", "configure_logging"]

LOG_LEVEL_ENV = "IMAGELEDGER_LOG_LEVEL"


def configure_logging(default_level: str = "info") -> None:
    """Send structlog events to stderr at ``IMAGELEDGER_LOG_LEVEL`` (or the default)."""
    name = os.environ.get(LOG_LEVEL_ENV, default_level).upper()
    level = logging.getLevelNamesMapping().get(name, logging.INFO)
    renderer: structlog.typing.Processor
    if sys.stderr.isatty():
        renderer = structlog.dev.ConsoleRenderer()
    else:
        renderer = structlog.processors.LogfmtRenderer(key_order=["timestamp", "level", "event"])
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
