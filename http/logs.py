"""Log configuration for the `oncue` command: logfmt lines or JSON lines, from the same events.

Modules log through the standard library with an event name and typed fields:
`logger.info("task.retry", extra={"task_id": job.id, "attempt": 2, "delay": 0.5})`.
structlog's `ProcessorFormatter` turns each record into one event (time, level, logger, event,
the `extra=` fields, an exception if any) and renders it as one line:

    time=2026-12-05T09:00:00.000Z level=info logger=oncue.actors.scheduler event=task.retry ...
    {"time": "2026-12-05T09:00:00.000Z", "level": "info", ..., "attempt": 2, "delay": 0.5}

Both forms come from the same event, so a field is a number in JSON when it was logged as one,
and no value can start a line of its own (newlines are escaped; tracebacks are one field).
Records from other libraries (Hypercorn) have no fields: their message is the event.
"""

from __future__ import annotations

import datetime
import logging
import sys
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LOG_FORMATS = ("text", "json")
FIRST_KEYS = ("time", "level", "logger", "event")


def _time(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    """When the record was made (not when it is rendered), ISO 8601 UTC in milliseconds."""
    record: logging.LogRecord = event["_record"]
    moment = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
    event["time"] = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return event


def _add_fields(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    """The record's `extra=` fields (structlog's ExtraAdder would take the `message` another
    handler's formatting leaves on the record for one)."""
    event.update(fields(event["_record"]))
    return event


class _Logfmt:
    """structlog's logfmt renderer, plus: a carriage return in a value cannot rewrite a
    terminal line (logfmt escapes only newlines)."""

    def __init__(self) -> None:
        self._render = structlog.processors.LogfmtRenderer(bool_as_flag=False)

    def __call__(self, logger: WrappedLogger, method: str, event: EventDict) -> str:
        return self._render(logger, method, event).replace("\r", "\\r")


def _first_keys_first(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    """time, level, logger, event, then the fields in the order they were logged."""
    ordered = {key: event.pop(key) for key in FIRST_KEYS if key in event}
    ordered.update(event)
    return ordered


def formatter(log_format: str = "text") -> logging.Formatter:
    """A `logging.Formatter` rendering every record as one logfmt ("text") or JSON line."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {LOG_FORMATS}, got {log_format!r}")
    json_lines = structlog.processors.JSONRenderer(default=str)
    renderer: Processor = json_lines if log_format == "json" else _Logfmt()
    pre_chain: list[Processor] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _add_fields,
        _time,
    ]
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=pre_chain,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _first_keys_first,
            renderer,
        ],
    )


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Send every log record to stderr as one `log_format` ("text" or "json") line at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())


def fields(record: logging.LogRecord) -> dict[str, Any]:
    """The `extra=` fields of a record (what tests look at instead of the rendered line)."""
    standard = _STANDARD_ATTRIBUTES
    return {key: value for key, value in vars(record).items() if key not in standard}


_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}
