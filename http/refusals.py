"""`StartupError`, in a module of its own: the CLI catches it without importing trio."""

from __future__ import annotations


class StartupError(Exception):
    """A long-running command could not start; the message says why, in one line.

    `oncue serve` and `oncue worker` print it as `oncue: MESSAGE` and exit 1 (no traceback).
    """
