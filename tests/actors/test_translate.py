"""Backends translate their drivers' errors into BackendErrors, and nothing else."""

from __future__ import annotations

import errno
import sqlite3

import pytest

from oncue.actors import BackendFull, BackendUnavailable, BadQuery
from oncue.actors.backends import sqlite as sqlite_backend
from oncue.actors.backends.translate import translating


@translating(sqlite_backend.classify)
class Driver:
    """Raises what it is given, as a backend's driver would."""

    async def call(self, error: Exception) -> None:
        raise error

    async def _private(self, error: Exception) -> None:
        raise error


@pytest.mark.parametrize(
    ("driver_error", "translated"),
    [
        (sqlite3.OperationalError("database or disk is full"), BackendFull),
        (sqlite3.OperationalError("database is locked"), BackendUnavailable),
        (OSError(errno.ENOSPC, "No space left on device"), BackendFull),
        (OSError(errno.EIO, "Input/output error"), BackendUnavailable),
        (OverflowError("Python int too large to convert to SQLite INTEGER"), BadQuery),
    ],
)
async def test_driver_errors_leave_as_backend_errors(driver_error, translated) -> None:
    with pytest.raises(translated) as caught:
        await Driver().call(driver_error)
    assert caught.value.cause is driver_error
    assert caught.value.__cause__ is driver_error


@pytest.mark.parametrize(
    "bug", [TypeError("a bug"), sqlite3.ProgrammingError("misuse"), KeyError("x")]
)
async def test_what_is_not_a_driver_failure_passes_unchanged(bug) -> None:
    with pytest.raises(type(bug)):
        await Driver().call(bug)


async def test_private_helpers_are_not_wrapped() -> None:
    with pytest.raises(OSError, match="inside the backend"):
        await Driver()._private(OSError(errno.EIO, "inside the backend"))
