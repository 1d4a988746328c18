"""`serve()`: Hypercorn's trio worker serving the app, inside the caller's nursery."""

from __future__ import annotations

import logging
from functools import partial

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from quart_trio import QuartTrio

from oncue.actors import Engine, EventsDropped, TaskEvent

from .app import Service, create_app
from .metrics import Metrics

logger = logging.getLogger(__name__)
task_logger = logging.getLogger("oncue.task")

DEFAULT_GRACEFUL_TIMEOUT = 3.0
EVENTS_CAPACITY = 10_000
# Hypercorn's default accept backlog is 100: a burst of more new connections overflows it and
# Linux then leaves the extra clients "connected" to nothing until they are reset ~60 s later
# (found by bench/soak.py opening 1,000 at once). The kernel caps it at net.core.somaxconn.
BACKLOG = 4096


async def serve(
    engine: Engine,
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    app: QuartTrio | None = None,
    shutdown: trio.Event | None = None,
    graceful_timeout: float = DEFAULT_GRACEFUL_TIMEOUT,
    log_tasks: bool = True,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `engine` over HTTP until `shutdown` is set (or the caller cancels).

    Start it with `port = await nursery.start(serve, engine, host, 0)`: it reports the bound
    port once it listens. Setting `shutdown` stops accepting connections, ends long-polls
    early and gives in-flight requests `graceful_timeout` seconds to finish (idle keep-alive
    connections also hold shutdown up to that long). The engine is left running: the caller
    owns it.

    Args:
        engine: the engine the app talks to (ignored for routing if `app` is given).
        host: the address to bind; port 0 picks a free port.
        app: an app made by `create_app(engine)`, to configure it first.
        shutdown: set it to stop serving gracefully.
        graceful_timeout: seconds in-flight requests get once shutdown begins.
        log_tasks: log one line per task transition (`task.completed id=... worker=...`).
    """
    if app is None:
        app = create_app(engine)
    current: Service = app.extensions["oncue"]
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.graceful_timeout = graceful_timeout
    config.backlog = BACKLOG
    config.accesslog = None  # the app logs one line per request itself
    config.errorlog = logging.getLogger("hypercorn.error")
    stop = shutdown if shutdown is not None else trio.Event()

    async def shutdown_trigger() -> None:
        await stop.wait()
        current.draining.set()  # long-polls answer now instead of holding shutdown

    async with trio.open_nursery() as nursery:
        nursery.start_soon(follow_events, engine, current.metrics, log_tasks)
        async with trio.open_nursery() as server_nursery:
            binds = await server_nursery.start(
                partial(hypercorn_serve, app, config, shutdown_trigger=shutdown_trigger)
            )
            logger.info("http.listening url=%s", binds[0])
            task_status.started(int(binds[0].rsplit(":", 1)[1]))
        # Hypercorn has stopped; the metrics follower would only end with the engine.
        nursery.cancel_scope.cancel()


async def follow_events(engine: Engine, metrics: Metrics, log_tasks: bool) -> None:
    """Feed every task transition to the metrics (and the log) until the engine stops.

    A stream that falls too far behind is dropped by the engine; subscribe again (the counts
    then miss what was dropped, and the log says so).
    """
    while True:
        try:
            async for event in engine.events(EVENTS_CAPACITY):
                metrics.observe_event(event)
                if log_tasks:
                    log_transition(event)
            return
        except EventsDropped:
            logger.warning("http.events_dropped capacity=%d", EVENTS_CAPACITY)


def log_transition(event: TaskEvent) -> None:
    """One line per task transition, with the worker that ran it."""
    task_logger.info(
        "task.%s id=%s type=%s worker=%s attempts=%d",
        event.state.value,
        event.task_id,
        event.type,
        event.worker or "-",
        event.attempts,
    )
