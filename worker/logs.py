"""Structured logging to stderr, one event per line: JSON, logfmt or console text.

``IMAGELEDGER_LOG_FORMAT`` picks the format: ``json`` (for log shippers; the default when
stderr is not a terminal), ``logfmt`` (``key=value``) or ``console`` (aligned and coloured;
the default on a terminal). ``IMAGELEDGER_LOG_LEVEL`` picks the level. Our events and the
libraries' (``logging``: aio-pika, aiohttp, asyncio; warnings and up) go
through the same renderer, so every line of a process has the same shape.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from worker.domain.errors import InvalidInputError

__all__ = ["LOG_FORMATS", "LOG_FORMAT_ENV", "LOG_LEVEL_ENV", "configure_logging", "log_start"]

LOG_LEVEL_ENV = "IMAGELEDGER_LOG_LEVEL"
LOG_FORMAT_ENV = "IMAGELEDGER_LOG_FORMAT"
LOG_FORMATS = ("json", "logfmt", "console")
_LEAD = ("timestamp", "level", "event", "logger")
_HANDLER = "imageledger"
_OUR_LOGGERS = ("imageledger", "worker")


def log_format() -> str:
    """The format ``IMAGELEDGER_LOG_FORMAT`` names, else JSON off a terminal, console on one.

    Raises
    ------
    InvalidInputError
        The variable names no known format.
    """
    given = os.environ.get(LOG_FORMAT_ENV, "").strip().lower()
    if not given:
        return "console" if sys.stderr.isatty() else "json"
    if given not in LOG_FORMATS:
        known = ", ".join(LOG_FORMATS)
        raise InvalidInputError(f"{LOG_FORMAT_ENV} must be one of {known}, not {given!r}")
    return given


def configure_logging(default_level: str = "info") -> None:
    """Send our events and the libraries' to stderr, in the format of `log_format`, at
    ``IMAGELEDGER_LOG_LEVEL`` (or the default); calling it again replaces the setup."""
    name = os.environ.get(LOG_LEVEL_ENV, default_level).upper()
    level = logging.getLevelNamesMapping().get(name, logging.INFO)
    stamp = structlog.processors.TimeStamper(fmt="iso", utc=True)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.stdlib.add_logger_name,
            stamp,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            stamp,
        ],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *_render()],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(level, logging.WARNING))  # the libraries': warnings and up
    for ours in _OUR_LOGGERS:
        logging.getLogger(ours).setLevel(level)


def _render() -> list[Processor]:
    """The last processors: tracebacks as text (JSON, logfmt), then the renderer."""
    chosen = log_format()
    if chosen == "console":
        return [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())]
    text = structlog.processors.format_exc_info
    if chosen == "logfmt":
        return [
            text,
            structlog.processors.LogfmtRenderer(key_order=list(_LEAD), bool_as_flag=False),
        ]
    return [text, _lead_keys, structlog.processors.JSONRenderer()]


def _lead_keys(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """Timestamp, level, event and logger first, the event's own fields after."""
    lead = {key: event.pop(key) for key in _LEAD if key in event}
    return {**lead, **event}


def log_start(command: str, fields: Mapping[str, Any]) -> None:
    """The one line a long-running command (``run``, ``kube``) logs as it starts: what it
    runs on (``fields``, from ``factory.start_fields``: never a credential)."""
    log = structlog.get_logger("imageledger")
    log.info(f"imageledger {command} starting", command=command, **fields)
