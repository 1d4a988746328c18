"""open_engine(): the task engine's supervision tree.

    oncue (rest_for_one)
    ├── store        every state change; owns the backend
    ├── scheduler    ready heap, timers, who runs what
    ├── workers (one_for_one, resizable)
    │   ├── worker-1
    │   └── ...
    └── node         shared stores only: leases, reaping, the backend's notices

The handle it yields, Engine, is in handle.py: it holds no task records, every call is a message
to the store or the scheduler.
"""

from __future__ import annotations

import logging
import math
import os
import random
import secrets
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import cast

import trio

from .backends import Backend, SharedBackend, is_shared, open_backend
from .builtins import register_builtins
from .events import Observer
from .gc_tuning import GC_THRESHOLD, tuned_gc
from .handle import ASK_BOUND, Engine
from .node import Node
from .pool import WorkerPool
from .registry import Registry, check_lease
from .scheduler import Scheduler
from .spec import ChildSpec
from .store import Store, StoreLife
from .supervisor import Supervisor
from .tree import SupervisorRef, open_supervisor

logger = logging.getLogger(__name__)

DEFAULT_THREADS = 40  # trio's own default thread limit
RETENTION = 7 * 24 * 3600.0  # seconds finished tasks are kept by default
LEASE = 30.0  # seconds an engine owns a claimed task of a shared store without renewing it
SHUTDOWN_BOUND = 3 * ASK_BOUND  # once drained, stopping the tree takes moments; bound it anyway


@asynccontextmanager
async def open_engine(
    *,
    registry: Registry | None = None,
    workers: int = 5,
    queue_size: int = 1000,
    store: str | Backend = "memory://",
    grace: float = 10.0,
    observer: Observer | None = None,
    seed: int | None = None,
    retention: float | None = RETENTION,
    threads: int | None = None,
    lease: float = LEASE,
    node: str | None = None,
    gc_threshold: int | None = GC_THRESHOLD,
) -> AsyncIterator[Engine]:
    """Run a task engine for the duration of the block; returns once it is ready.

    Leaving the block normally shuts down gracefully (see :meth:`Engine.shutdown`); leaving it
    with an exception cancels everything at once. ``store`` is a store URL or a Backend.
    ``seed`` fixes the retry jitter (tests). ``retention``: seconds finished tasks are kept
    (default 7 days; None keeps them forever); older ones are purged in batches. ``threads``:
    how many threads sync handlers may use at once (default max(40, 2 x workers)); a handler
    abandoned at its timeout keeps its thread until it returns. ``gc_threshold``: the garbage
    collector's young-generation threshold while the engine runs (process-wide, restored after;
    None leaves it alone; see gc_tuning.py for the trade-off).

    With a shared store (``postgresql://``, ``redis://``) several engines, in one process or
    many, share the queue: each claims tasks into its own buffer and owns them under a lease
    of ``lease`` seconds (or the handler's own ``lease``), renewed while it lives; a dead
    engine's tasks run elsewhere once their lease expires. ``node`` names this engine among
    them (default: host:pid:random).

    Raises ValueError naming the argument for a bad configuration.
    """
    _check_config(workers, queue_size, grace, retention, threads)
    lease = check_lease(lease)
    if gc_threshold is not None and (
        isinstance(gc_threshold, bool) or not isinstance(gc_threshold, int) or gc_threshold < 1
    ):
        raise ValueError(f"gc_threshold must be an int >= 1 or None, got {gc_threshold!r}")
    backend = open_backend(store) if isinstance(store, str) else store
    registry = registry if registry is not None else register_builtins(Registry())
    rng = random.Random(seed)
    shared = is_shared(backend)
    if shared:
        node = node or f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        shared_backend = cast(SharedBackend, backend)
        shared_backend.attach(node, registry.lease_for(lease), runs=registry.names())

    store_life = StoreLife()

    def make_store() -> Store:
        return Store(backend, scheduler_spec.ref, queue_size, store_life, node if shared else None)

    def make_scheduler() -> Scheduler:
        named = node if shared else None
        return Scheduler(store_spec.ref, registry, rng, retention=retention, node=named)

    store_spec = ChildSpec("store", make_store, mailbox_size=10_000, shutdown=grace + 5)
    scheduler_spec = ChildSpec("scheduler", make_scheduler, mailbox_size=math.inf)
    thread_limit = trio.CapacityLimiter(threads or max(DEFAULT_THREADS, 2 * workers))
    pool = WorkerPool(scheduler_spec.ref, store_spec.ref, registry, grace, thread_limit)
    for number in range(1, workers + 1):
        pool.add(number)

    def make_workers() -> Supervisor:
        return pool.supervisor(max_restarts=max(3, workers))

    workers_spec = ChildSpec("workers", make_workers, shutdown=math.inf, mailbox_size=math.inf)
    children = [store_spec, scheduler_spec, workers_spec]
    if shared:
        shortest = min([lease, *(h.lease for h in registry if h.lease is not None)])

        def make_node() -> Node:
            return Node(shared_backend, store_spec.ref, scheduler_spec.ref, shortest)

        children.append(ChildSpec("node", make_node))
    async with open_supervisor(
        children,
        name="oncue",
        strategy="rest_for_one",
        observer=observer,
        shutdown=grace + SHUTDOWN_BOUND,  # once drained, stopping takes moments; bound it anyway
    ):
        engine = Engine(
            registry=registry,
            store=store_spec.ref,
            scheduler=scheduler_spec.ref,
            workers=SupervisorRef(workers_spec.ref),
            pool=pool,
            grace=grace,
            durable=backend.durable,
            node=node if shared else None,
        )
        with tuned_gc(gc_threshold):
            yield engine
        await engine.shutdown()


def _check_config(
    workers: int, queue_size: int, grace: float, retention: float | None, threads: int | None
) -> None:
    """Raise ValueError naming the first bad argument of open_engine."""

    def whole(value: object, least: int) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= least

    if not whole(workers, 0):
        raise ValueError(f"workers must be an int >= 0, got {workers!r}")
    if not whole(queue_size, 1):
        raise ValueError(f"queue_size must be an int >= 1, got {queue_size!r}")
    if not grace >= 0:
        raise ValueError(f"grace must be a number of seconds >= 0, got {grace!r}")
    if retention is not None and (
        isinstance(retention, bool) or not isinstance(retention, int | float) or not retention >= 0
    ):
        raise ValueError(f"retention must be seconds >= 0 or None, got {retention!r}")
    if threads is not None and not whole(threads, 1):
        raise ValueError(f"threads must be an int >= 1, got {threads!r}")
