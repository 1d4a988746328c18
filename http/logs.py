"""Log configuration for the `oncue` command: key=value lines, or one JSON object per line.

Modules log `"event key=value key=value"`; the JSON form splits those pairs into fields.
"""

from __future__ import annotations

import datetime
import json
import logging
import re
import sys
from typing import Any

_PAIR = re.compile(r"""(\w+)=("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\S+)""")


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class KeyValueFormatter(logging.Formatter):
    """`time=... level=info logger=oncue.http.access http.request method=GET ...`."""

    def format(self, record: logging.LogRecord) -> str:
        # One record, one line: a newline smuggled in through a logged value cannot start a
        # line of its own (tracebacks, below, are the only multi-line part).
        message = record.getMessage().replace("\r", "\\r").replace("\n", "\\n")
        line = (
            f"time={_timestamp(record)} level={record.levelname.lower()}"
            f" logger={record.name} {message}"
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event, the key=value fields, message."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        fields: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        event, _, rest = message.partition(" ")
        if "=" not in event:
            fields["event"] = event
            for key, value in _PAIR.findall(rest):
                fields.setdefault(key, value)
        fields["message"] = message
        if record.exc_info:
            fields["traceback"] = self.formatException(record.exc_info)
        return json.dumps(fields, default=str)


def configure_logging(level: str = "INFO", log_format: str = "text") -> None:
    """Send every log line to stderr in `log_format` ("text" or "json") at `level`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else KeyValueFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level.upper())
