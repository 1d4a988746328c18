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

from ..backends import Backend, SharedBackend, is_shared, open_backend
from ..builtins import register_builtins
from ..cores.recent import DEFAULT_BYTES, DEFAULT_COUNT, RecentResults
from ..registry import Registry, check_lease
from ..runtime.events import LifecycleEvent, Observer
from ..runtime.spec import ChildSpec
from ..runtime.supervisor import Supervisor
from ..runtime.tree import SupervisorRef, open_supervisor
from .gc_tuning import GC_THRESHOLD, tuned_gc
from .handle import Engine
from .node import Node
from .pool import WorkerPool
from .relay import Relay
from .running import ASK_BOUND
from .scheduler import Scheduler, check_linger, default_linger, linger_batch
from .store import Store, StoreLife
from .tracing import active as tracing_active
from .watch import Feed

logger = logging.getLogger(__name__)

DEFAULT_THREADS = 40  # trio's own default thread limit
RETENTION = 7 * 24 * 3600.0  # seconds finished tasks are kept by default
LEASE = 30.0  # seconds an engine owns a claimed task of a shared store without renewing it
RELEASE_BOUND = 1.0  # seconds closing the backend may take once the engine has ended
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
    recent_results: int = DEFAULT_COUNT,
    recent_results_bytes: int = DEFAULT_BYTES,
    share_events: bool = True,
    linger: float | None = None,
) -> AsyncIterator[Engine]:
    """Run a task engine for the duration of the block; returns once it is ready.

    Leaving the block normally shuts down gracefully (see :meth:`Engine.shutdown`); leaving it
    with an exception cancels everything at once. ``store`` is a store URL or a Backend.
    ``seed`` fixes the retry jitter (tests). ``retention``: seconds finished tasks are kept
    (default 7 days; None keeps them forever); older ones are purged in batches. ``threads``:
    how many threads sync handlers may use at once (default max(40, 2 x workers)); a handler
    abandoned at its timeout keeps its thread until it returns. ``gc_threshold``: the garbage
    collector's young-generation threshold while the engine runs (process-wide, restored after;
    None leaves it alone; see gc_tuning.py for the trade-off). ``recent_results`` and
    ``recent_results_bytes``: how many of the last finished tasks (and roughly how many bytes
    of them, payloads and results included) a durable store keeps in memory, so reading a
    result just after it finished needs no database read (0 keeps none; the memory store
    holds every task in memory anyway, see its ``?max_finished=``).

    With a shared store (``postgresql://``, ``redis://``) several engines, in one process or
    many, share the queue: each claims tasks into its own buffer and owns them under a lease
    of ``lease`` seconds (or the handler's own ``lease``), renewed while it lives; a dead
    engine's tasks run elsewhere once their lease expires. ``node`` names this engine among
    them (default: host:pid:random). ``share_events``: publish this engine's task transitions
    to the other nodes and follow theirs (``engine.remote_events()``, relay.py).

    ``linger``: seconds the scheduler may hold a trickle of ready tasks back for company, so
    a producer awaiting one ``submit()`` at a time gets them run in batches (default 0.001 on
    a real clock, 0.002 on SQLite, 0 on a MockClock; at most 0.1; 0 turns it off). It starts
    only when a task is ready again within ``linger`` of the last hand-out while a worker
    waits, and ends after ``linger`` or once 32 tasks (a quarter of ``queue_size`` if less)
    have gathered: a task after a quiet spell never waits.

    Raises ValueError naming the argument for a bad configuration.
    """
    _check_config(workers, queue_size, grace, retention, threads)
    for name, value in (
        ("recent_results", recent_results),
        ("recent_results_bytes", recent_results_bytes),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")
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
    if linger is None:
        linger_for = default_linger(durable_alone=backend.durable and not shared)
    else:
        linger_for = check_linger(linger)
    gathered = linger_batch(queue_size)
    if gathered < 2:  # a queue this small: nothing to gather
        linger_for = 0.0

    in_memory = not backend.durable
    kept = 0 if in_memory else recent_results

    def make_store() -> Store:
        recent = RecentResults(kept, recent_results_bytes)  # a cache: each incarnation its own
        named = node if shared else None
        return Store(backend, scheduler_spec.ref, queue_size, store_life, named, recent)

    def make_scheduler() -> Scheduler:
        named = node if shared else None
        return Scheduler(
            store_spec.ref,
            registry,
            rng,
            retention=retention,
            node=named,
            confirm_starts=not in_memory,  # an attempt is counted before it runs
            linger=linger_for,
            linger_batch=gathered,
        )

    store_spec = ChildSpec("store", make_store, mailbox_size=10_000, shutdown=grace + 5)
    scheduler_spec = ChildSpec("scheduler", make_scheduler, mailbox_size=math.inf)
    thread_limit = trio.CapacityLimiter(threads or max(DEFAULT_THREADS, 2 * workers))
    named_node = node if shared else None
    traced = tracing_active()  # once: set the tracer provider before opening the engine
    pool = WorkerPool(
        scheduler_spec.ref, store_spec.ref, registry, grace, thread_limit, named_node, traced
    )
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
    feed, remote = Feed(), Feed()
    if shared and share_events:

        def make_relay() -> Relay:
            assert node is not None
            return Relay(shared_backend, store_spec.ref, remote, node)

        children.append(ChildSpec("relay", make_relay))

    def observe(event: LifecycleEvent) -> None:
        feed.publish(event)  # never blocks; then the caller's observer, as before
        if observer is not None:
            observer(event)

    async with (
        released(backend),
        open_supervisor(
            children,
            name="oncue",
            strategy="rest_for_one",
            observer=observe,
            shutdown=grace + SHUTDOWN_BOUND,  # once drained, stopping takes moments; bound it
        ) as root,
    ):
        engine = Engine(
            registry=registry,
            store=store_spec.ref,
            scheduler=scheduler_spec.ref,
            workers=SupervisorRef(workers_spec.ref),
            pool=pool,
            grace=grace,
            durable=not in_memory,
            node=node if shared else None,
            traced=traced,
            root=root,
            feed=feed,
            retention=retention,
            remote=remote,
            queue_size=queue_size,
        )
        try:
            with tuned_gc(gc_threshold):
                yield engine
            await engine.shutdown()
        finally:
            feed.close()
            remote.close()


@asynccontextmanager
async def released(backend: Backend) -> AsyncIterator[None]:
    """Close `backend` when the block ends, however it ends (issue 17 item 9).

    The store closes it when it stops gracefully; an engine that died (an error in the
    caller's block, a supervisor that gave up) left it open, and with it the SQLite file's
    lock or a PostgreSQL node name, until a garbage collection: opening the store again in
    the same process failed with DatabaseInUse. Closing twice is harmless. Shielded and
    bounded: a backend that hangs cannot hold the exit for more than RELEASE_BOUND seconds.
    """
    try:
        yield
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(RELEASE_BOUND):
            try:
                await backend.close()
            except Exception as error:  # the backend's own errors: it is going away anyway
                logger.warning("engine.backend_close_failed", extra={"error": repr(error)})


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
