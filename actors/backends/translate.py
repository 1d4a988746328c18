"""Driver errors become BackendErrors at the backend boundary.

Each backend names what its driver raises with a ``classify`` function; ``translating`` wraps
every async method of the class so that an error ``classify`` recognises leaves it as a
``BackendUnavailable``, ``BackendFull`` or ``BadQuery`` (the driver's error chained as its
cause). What ``classify`` does not recognise (a bug, a configuration error) passes unchanged:
the store crashes on it and its supervisor decides, instead of mistaking it for an outage.
"""

from __future__ import annotations

import errno
import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ..errors import BackendError, BackendFull, BackendUnavailable, BadQuery

C = TypeVar("C", bound=type)
Classify = Callable[[Exception], BackendError | None]


def translating(classify: Classify) -> Callable[[C], C]:
    """Class decorator: every public async method raises BackendErrors for driver errors."""

    def decorate(cls: C) -> C:
        for name, method in list(vars(cls).items()):
            if not name.startswith("_") and inspect.iscoroutinefunction(method):
                setattr(cls, name, _translated(method, classify))
        return cls

    return decorate


def _translated(
    method: Callable[..., Awaitable[Any]], classify: Classify
) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return await method(*args, **kwargs)
        except BackendError:
            raise
        except Exception as error:
            translated = classify(error)
            if translated is None:
                raise
            raise translated from error

    return call


def os_error(error: Exception) -> BackendError | None:
    """What every backend shares: a full disk, a refused or broken connection, a number too
    large for the driver to bind."""
    if isinstance(error, OSError):
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            return BackendFull(f"the disk is full: {error}", error)
        return BackendUnavailable(f"{type(error).__name__}: {error}", error)
    if isinstance(error, OverflowError):
        return BadQuery(f"a value is out of the backend's range: {error}", error)
    return None
