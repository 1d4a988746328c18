"""What the long-running commands (`oncue serve`, `oncue worker`) share.

Loading the user's handlers, turning SIGINT/SIGTERM into a graceful drain (a second signal
exits at once), and draining the engine within `--grace`.
"""

from __future__ import annotations

import importlib
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from urllib.parse import urlsplit, urlunsplit

import trio

from oncue.actors import Engine, OncueError, Registry, SupervisorGaveUp, register_builtins

SIGNALS = (signal.SIGINT, signal.SIGTERM)
# Seconds past --grace a drained process may take to end (the HTTP server's own graceful
# timeout, 3 s, and closing the store fit in it); past that, what still runs is abandoned.
EXIT_BOUND = 5.0
EXIT_ABANDONED = 1  # the exit code when running tasks had to be abandoned
_exit_deadline: threading.Timer | None = None
_bounding_exit = False  # a command that owns the process runs: drains arm the deadline


def load_registry(module_name: str | None, *, builtins: bool = True) -> Registry:
    """The registry to serve: `module_name`'s `registry` (`module:attr`) if given, plus the
    built-in task types unless `builtins` is false (a type of yours keeps its own handler).

    The current directory is importable, as with `celery -A`.
    """
    registry = _user_registry(module_name) if module_name is not None else Registry()
    return register_builtins(registry) if builtins else registry


def _user_registry(module_name: str) -> Registry:
    """`module_name`'s `registry`; SystemExit with one line if it cannot be found."""
    module_path, _, attribute = module_name.partition(":")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_path)
    except ModuleNotFoundError as error:
        raise SystemExit(
            f"oncue: --handlers {module_name}: no module named {error.name!r}"
            " (is it on PYTHONPATH, or in the working directory?)"
        ) from None
    registry = getattr(module, attribute or "registry", None)
    if not isinstance(registry, Registry):
        raise SystemExit(
            f"oncue: {module_path} has no Registry named {attribute or 'registry'!r};"
            " define `registry = Registry()` and decorate your handlers with @registry.task()"
        )
    return registry


def node_name() -> str:
    """How this process names itself in the log: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def redact(url: str) -> str:
    """`url` fit for a log line: a password in it becomes `***`."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


@asynccontextmanager
async def open_signal_watch(
    signals: AsyncIterator[int], role: str, early: Iterable[int] = ()
) -> AsyncIterator[trio.Event]:
    """Yield an event the first SIGINT/SIGTERM sets; a second one exits the process at once.

    `signals` comes from `trio.open_signal_receiver(*SIGNALS)`; `early` are the signals the
    console script caught before it opened (while Python imported us): they count first.
    `role` names the log events (`server.signal`, `worker.signal`).
    """
    async with trio.open_nursery() as nursery:
        signalled = trio.Event()
        nursery.start_soon(_watch_signals, signals, signalled, role, list(early))
        yield signalled
        nursery.cancel_scope.cancel()


async def _watch_signals(
    signals: AsyncIterator[int], signalled: trio.Event, role: str, early: list[int]
) -> None:
    for signum in early:
        _on_signal(signum, signalled, role)
    async for signum in signals:
        _on_signal(signum, signalled, role)


def _on_signal(signum: int, signalled: trio.Event, role: str) -> None:
    name = signal.Signals(signum).name
    if not signalled.is_set():
        _logger(role).info("%s.signal signal=%s action=drain", role, name)
        signalled.set()
        return
    _logger(role).warning("%s.signal signal=%s action=exit_now", role, name)
    logging.shutdown()
    os._exit(128 + signum)


async def drain(engine: Engine, grace: float, role: str) -> None:
    """Shut `engine` down within `grace` seconds, logging what it left unfinished."""
    logger = _logger(role)
    logger.info("%s.draining grace=%.1fs", role, grace)
    if _bounding_exit:
        arm_exit_deadline(grace + EXIT_BOUND, role)
    report = await engine.shutdown(grace=grace)
    logger.info(
        "%s.drained unfinished=%d interrupted=%d",
        role,
        len(report.unfinished),
        report.interrupted,
    )
    if engine.durable:  # they wait in the store for the next start: no need to list them
        return
    for task_id in report.unfinished:  # the memory store loses these: name every one
        logger.warning("task.unfinished id=%s", task_id)


@contextmanager
def bounded_exit() -> Iterator[None]:
    """For the block (a command that owns the process: `oncue serve`, `oncue worker`), a
    drain arms the exit deadline; after it, none is left armed. Code that runs an engine
    inside a process of its own (a test, an embedding) never has its process ended."""
    global _bounding_exit
    _bounding_exit = True
    try:
        yield
    finally:
        _bounding_exit = False
        disarm_exit_deadline()


def arm_exit_deadline(seconds: float, role: str) -> None:
    """End the process in `seconds` unless `disarm_exit_deadline()` comes first.

    A handler that shields itself from cancellation (or blocks the event loop) would otherwise
    keep a drained process alive past --grace for as long as it likes (16 s with --grace 3
    was seen). A timer thread, so a blocked event loop cannot hold it up: it logs what it does
    and exits with EXIT_ABANDONED; the tasks still running are re-queued by the next start's
    recovery (or another node, once their lease expires).
    """
    global _exit_deadline
    disarm_exit_deadline()
    timer = threading.Timer(seconds, _abandon, args=(seconds, role))
    timer.daemon = True
    timer.start()
    _exit_deadline = timer


def disarm_exit_deadline() -> None:
    """The process ends by itself: no need for the deadline any more."""
    global _exit_deadline
    if _exit_deadline is not None:
        _exit_deadline.cancel()
        _exit_deadline = None


def _abandon(seconds: float, role: str) -> None:
    _logger(role).error(
        "%s.abandoned after=%.1fs reason=running tasks ignored the shutdown; exiting"
        " (they run again at the next start, or on another node once their lease expires)",
        role,
        seconds,
    )
    logging.shutdown()
    os._exit(EXIT_ABANDONED)


def _logger(role: str) -> logging.Logger:
    return logging.getLogger(f"oncue.{role}")  # oncue.server, oncue.worker


@contextmanager
def one_line_refusals() -> Iterator[None]:
    """An engine that could not start for a reason the user can fix (a SQLite file another
    process holds, a node name a live node has) exits 1 with that reason in one line."""
    try:
        yield
    except SupervisorGaveUp as gave_up:
        if isinstance(gave_up.error, OncueError):
            raise SystemExit(f"oncue: {gave_up.error}") from None
        raise
