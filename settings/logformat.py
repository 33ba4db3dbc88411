"""Structured logs through structlog: one line per event, logfmt or JSON, with the event's ids
as fields rather than only inside the prose.

The project logs with `structlog.get_logger(__name__).info("campaign started",
campaign_id=…)`; every line, the project's and Django's or Celery's alike, goes through the
standard library's logging (so Celery's and Django's handlers, pytest's caplog and log
levels work as usual) and is rendered by one formatter: `time`, `level`, `logger`, `event`,
the fields, then ids bound for the current batch or campaign (`bind_contextvars`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import structlog
from structlog.typing import EventDict, WrappedLogger

_FIRST = ("time", "level", "logger", "event")


def _time(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    record = event_dict.get("_record")
    created = record.created if isinstance(record, logging.LogRecord) else None
    stamp = datetime.fromtimestamp(created, UTC) if created else datetime.now(UTC)
    event_dict["time"] = stamp.isoformat(timespec="milliseconds")
    return event_dict


def _error_field(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """A traceback goes in the `error` field."""
    if "exception" in event_dict:
        event_dict["error"] = event_dict.pop("exception")
    return event_dict


def _in_order(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    first = {k: event_dict.pop(k) for k in _FIRST if k in event_dict}
    return {**first, **event_dict}


def formatter(style: str = "logfmt") -> structlog.stdlib.ProcessorFormatter:
    """The one formatter of every handler (settings.base LOGGING)."""
    renderer: Any = (
        structlog.processors.JSONRenderer(default=str)
        if style == "json"
        else structlog.processors.LogfmtRenderer(bool_as_flag=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.ExtraAdder(),
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            _time,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _error_field,
            _in_order,
            renderer,
        ],
    )


def configure() -> None:
    """structlog's loggers hand each event to the standard library's logger of the same name
    as a message with fields (`extra`), so the formatter above renders every line."""
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.render_to_log_kwargs,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
