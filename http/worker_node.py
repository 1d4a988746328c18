"""`oncue worker`: the engine without HTTP, running tasks from a store other nodes share.

Submissions come through the nodes that serve HTTP (or embed the engine); this node claims
ready tasks from the shared store, holding each under a lease (`--lease`) that another node
takes over if this one dies. SIGINT/SIGTERM drains within `--grace` and exits 0; a second
signal exits at once.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import AsyncIterator
from functools import partial
from urllib.parse import urlsplit

import trio

from oncue.actors import Engine, Registry, open_engine

from .logs import configure_logging
from .options import check_options, check_store, engine_options
from .process import (
    SIGNALS,
    bounded_exit,
    drain,
    load_registry,
    node_name,
    one_line_refusals,
    open_signal_watch,
    redact,
)
from .startup import startup_errors, wait_for_store

logger = logging.getLogger("oncue.worker")

NOT_SHARED = (
    "oncue worker needs a shared store (postgresql://... or redis://...);"
    " sqlite/memory stores belong to one process: use oncue serve"
)


def check_shared_store(url: str | None) -> None:
    """Refuse (SystemExit, one line) no store, or one that only one process can use."""
    if url is None or url.startswith("memory") or urlsplit(url).scheme in ("memory", "sqlite"):
        raise SystemExit(NOT_SHARED)


def run_worker(options: argparse.Namespace) -> int:
    """Run `oncue worker` until a signal has drained it; returns the exit code.

    Raises StartupError (one line) when the store did not answer within `--store-wait` or
    its schema is newer than this oncue.
    """
    store: str = options.store
    check_shared_store(store)
    check_store(store)
    check_options(options)
    configure_logging(options.log_level, options.log_format)
    registry = load_registry(options.handlers, builtins=options.builtins)
    with one_line_refusals(), startup_errors(), bounded_exit():
        return trio.run(partial(_work_until_signalled, options, registry))


async def _work_until_signalled(options: argparse.Namespace, registry: Registry) -> int:
    # Listening from the first moment: a signal while the engine starts drains it once it is up.
    with trio.open_signal_receiver(*SIGNALS) as signals:
        if not await wait_for_store(
            options.store, options.store_wait, signals, options.early_signals
        ):
            return 0
        return await work(options, registry, signals)


async def work(
    options: argparse.Namespace,
    registry: Registry,
    signals: AsyncIterator[int],
    *,
    task_status: trio.TaskStatus[Engine] = trio.TASK_STATUS_IGNORED,
) -> int:
    """Run the engine on `options.store` until the first of `signals`, then drain it.

    Reports the running engine through `task_status`; returns the exit code, 0.
    """
    async with (
        open_engine(registry=registry, **engine_options(options)) as engine,
        open_signal_watch(signals, "worker", options.early_signals) as signalled,
    ):
        logger.info(
            "worker.started node=%s store=%s workers=%d lease=%gs",
            engine.node or node_name(),
            redact(str(options.store)),
            options.workers,
            options.lease,
        )
        task_status.started(engine)
        await signalled.wait()
        await drain(engine, options.grace, "worker")
    logger.info("worker.stopped node=%s", engine.node or node_name())
    return 0
