"""`serve()`: Hypercorn's trio worker serving the app, inside the caller's nursery."""

from __future__ import annotations

import logging
import socket
from functools import partial

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve
from quart_trio import QuartTrio

from oncue.actors import Engine

from .app import create_app
from .service import Service
from .startup import StartupError, first_of

logger = logging.getLogger(__name__)


class CannotListen(StartupError, OSError):
    """`serve()` could not bind its address (in use, or not this machine's)."""


DEFAULT_GRACEFUL_TIMEOUT = 3.0
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

    Raises:
        CannotListen: (an OSError) the address is in use or cannot be bound; one line.
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

    current.log_tasks = log_tasks
    check_bindable(host, port)
    try:
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(
                partial(hypercorn_serve, app, config, shutdown_trigger=shutdown_trigger)
            )
            logger.info("http.listening url=%s", binds[0])
            task_status.started(int(binds[0].rsplit(":", 1)[1]))
    except BaseExceptionGroup as group:
        bind_error = first_of(group, OSError)
        if bind_error is None or not bind_error.errno:
            raise
        reason = bind_error.strerror or str(bind_error)
        raise CannotListen(f"cannot listen on {config.bind[0]}: {reason}") from None


def check_bindable(host: str, port: int) -> None:
    """Raise CannotListen (one line) unless `host`:`port` can be bound, as Hypercorn binds.

    Checked first because Hypercorn leaves its socket open when its bind fails.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            reason = error.strerror or str(error)
            raise CannotListen(f"cannot listen on {address}: {reason}") from None
