"""Captured log records as the `oncue` command prints them (logfmt), for tests to read."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from oncue.http.logs import formatter


def log_text(records: Iterable[logging.LogRecord], log_format: str = "text") -> str:
    """The records rendered one per line, as `--log-format` would print them."""
    render = formatter(log_format)
    return "\n".join(render.format(record) for record in records)
