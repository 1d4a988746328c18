"""Starting `oncue serve` and `oncue worker`: what can stop them before they run, said in one
line.

- `StartupError`: the reason a command could not start, in one line; the CLI prints it and
  exits 1 (no traceback). `startup_errors()` unwraps one from the exception groups that
  nurseries wrap it in.
- `wait_for_store()`: open the store once before the engine does, so that a database still
  starting is waited for (retried with backoff for `--store-wait` seconds, one log line an
  attempt) and a database that can never work (its schema newer than this oncue, a bad
  password) is said once, instead of the store actor crashing and restarting on it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import trio

from oncue.actors import BackendFull, BackendUnavailable, OncueError, open_backend

from .process import redact
from .refusals import StartupError

__all__ = ["StartupError", "backoff", "first_of", "startup_errors", "wait_for_store"]

logger = logging.getLogger("oncue.startup")

BACKOFF = (0.5, 5.0)  # seconds before the second attempt, doubling up to the second figure
CONNECT_TIMEOUT = 5.0  # seconds one attempt to reach a database server may take
# What PostgreSQL says at connect while it cannot take us yet (SQLSTATE 57P03, 53300).
BUSY_SERVER = ("starting up", "shutting down", "in recovery mode", "too many clients")


@contextmanager
def startup_errors() -> Iterator[None]:
    """Raise a StartupError alone, out of the exception groups nurseries put it in (what
    else is in the group is the cancellation it caused)."""
    try:
        yield
    except BaseExceptionGroup as group:
        found = first_of(group, StartupError)
        if found is None:
            raise
        raise found from None


def first_of(group: BaseExceptionGroup[Any], kind: type[BaseException]) -> Any:
    """The first exception of `kind` in `group`, however deeply nested, or None."""
    for error in group.exceptions:
        if isinstance(error, kind):
            return error
        if isinstance(error, BaseExceptionGroup) and (found := first_of(error, kind)):
            return found
    return None


def backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt number `attempt` (1, 2, ...)."""
    first, most = BACKOFF
    return float(min(most, first * 2 ** (attempt - 1)))


async def wait_for_store(
    url: str, wait: float, signals: AsyncIterator[int], early: Sequence[int] = ()
) -> bool:
    """Open the store at `url` once and close it, retrying while it does not answer.

    Returns True once it opened, False if SIGINT/SIGTERM came (from `signals`, or `early`
    already) while waiting between attempts: the caller then ends cleanly. Raises
    StartupError when `wait` seconds pass without an answer, or at once for a store that
    answered with a refusal that retrying cannot change.
    """
    if url.startswith("memory"):
        return True
    deadline = trio.current_time() + wait
    attempt = 0
    while True:
        attempt += 1
        try:
            await _open_once(url)
            return True
        except OncueError as error:  # says what it is about (a database in use, a node name)
            raise StartupError(str(error)) from None
        except (BackendFull, RuntimeError, ValueError) as error:  # a schema newer than us...
            raise StartupError(f"store {redact(url)}: {error}") from None
        except _unreachable() as error:
            if not _may_come_up(url, error):  # a refusal (a bad password), a bad file
                raise StartupError(f"store {redact(url)}: {_one_line(error)}") from None
            left = deadline - trio.current_time()
            if left <= 0:
                raise StartupError(
                    f"store {redact(url)} did not answer in {wait:g}s ({attempt} attempts):"
                    f" {_one_line(error)}; check it runs, or wait longer with --store-wait"
                ) from None
            delay = min(backoff(attempt), left)
            logger.warning(
                "store.unreachable",
                extra={
                    "store": redact(url),
                    "attempt": attempt,
                    "retry_in": delay,
                    "error": _one_line(error),
                },
            )
        if early or await _signalled_within(signals, delay):
            logger.info("startup.stopped", extra={"reason": "signal", "store": "unreachable"})
            return False


async def _open_once(url: str) -> None:
    """Reach the server (quickly, for PostgreSQL), then open the backend as the engine will:
    that runs its migrations and refuses a schema newer than this oncue."""
    if url.startswith(("postgres://", "postgresql://")):
        await _connect_postgres(url)
    backend = open_backend(url)
    try:
        with trio.fail_after(CONNECT_TIMEOUT * 3):
            await backend.open()
    finally:
        await backend.close()  # closes what a failed open left open too


async def _connect_postgres(url: str) -> None:
    import psycopg

    from oncue.actors.backends.postgres import split_url

    libpq_url, _schema = split_url(url)

    def connect() -> None:
        psycopg.connect(libpq_url, connect_timeout=int(CONNECT_TIMEOUT)).close()

    await trio.to_thread.run_sync(connect, abandon_on_cancel=True)


def _unreachable() -> tuple[type[BaseException], ...]:
    """What a store that does not answer (yet) raises: worth another attempt."""
    kinds: list[type[BaseException]] = [BackendUnavailable, OSError, trio.TooSlowError]
    try:
        import psycopg

        kinds.append(psycopg.OperationalError)
    except ImportError:
        pass
    return tuple(kinds)


def _may_come_up(url: str, error: BaseException) -> bool:
    """Whether another attempt may succeed: no answer at all, or a server still starting, not
    one that refused us (a wrong password, no such role or database: PostgreSQL's FATAL at
    connect, which psycopg gives no SQLSTATE for), nor a SQLite file that cannot open (not a
    database, a folder that cannot be made): a local file does not come up by waiting."""
    if url.startswith("sqlite"):
        return False
    text = str(error)
    if "FATAL:" not in text:
        return True
    return any(phrase in text for phrase in BUSY_SERVER)


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text[:300]


async def _signalled_within(signals: AsyncIterator[int], seconds: float) -> bool:
    """Whether a signal comes within `seconds`."""
    with trio.move_on_after(seconds):
        async for _signum in signals:
            return True
    return False
