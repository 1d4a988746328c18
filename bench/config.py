"""What is measured: the systems (oncue and its peers, with their settings) and the cases."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MODES = ("full", "quick", "smoke")


@dataclass(frozen=True)
class System:
    """One contender: which venv and driver module run it, and how it is set up."""

    name: str
    module: str  # run as `python -m <module> <spec json>`
    venv: str | None  # a bench/.venvs group; None: the project's own interpreter
    settings: str  # the settings used, as written in the report
    backing: str = "memory"  # memory | sqlite | redis | postgres
    variant: str = ""
    oncue: bool = False
    store: str = "memory"  # oncue's store: memory | sqlite | postgres | redis
    nodes: int = 1  # engines sharing the store (postgres, redis), each in its own process


SYSTEMS: tuple[System, ...] = (
    System(
        "oncue",
        "bench.engine",
        None,
        "open_engine(workers=8, memory store), one awaited submit() per task",
        oncue=True,
    ),
    System(
        "oncue-batch",
        "bench.engine",
        None,
        "same engine, submit_many() of 1,000 tasks per call",
        variant="batch",
        oncue=True,
    ),
    System(
        "oncue-nowait",
        "bench.engine",
        None,
        "same engine, submit_nowait() per task (no round trip; id given at once)",
        variant="nowait",
        oncue=True,
    ),
    System(
        "huey-memory",
        "bench.peers.huey_peer",
        "huey",
        "MemoryHuey, create_consumer(workers=8, worker_type='thread', periodic=False)",
        variant="memory",
    ),
    System(
        "huey-sqlite",
        "bench.peers.huey_peer",
        "huey",
        "SqliteHuey (file in a tmp dir), same consumer",
        backing="sqlite",
        variant="sqlite",
    ),
    System(
        "taskiq-memory",
        "bench.peers.taskiq_memory",
        "taskiq",
        "InMemoryBroker(max_async_tasks=8, max_stored_results=-1), producer's loop",
    ),
    System(
        "dramatiq",
        "bench.peers.dramatiq_peer",
        "dramatiq",
        "RedisBroker + Redis results, --processes 1 --threads 8",
        backing="redis",
    ),
    System(
        "arq",
        "bench.peers.arq_peer",
        "arq",
        "max_jobs=8, poll_delay=0.01 s (0.5 s default caps it near 200/s)",
        backing="redis",
    ),
    System(
        "rq",
        "bench.peers.rq_peer",
        "rq",
        "SimpleWorker, one process (sleep: worker-pool -n 16); high queue listed first",
        backing="redis",
    ),
    System(
        "celery",
        "bench.peers.celery_peer",
        "celery",
        "Redis broker + results, -P solo (sleep: -P threads -c 100), no gossip/mingle/heartbeat",
        backing="redis",
    ),
    System(
        "procrastinate",
        "bench.peers.procrastinate_peer",
        "procrastinate",
        "psycopg connector, worker --concurrency 8 (sleep: 100), LISTEN/NOTIFY",
        backing="postgres",
    ),
)
HTTP_SYSTEMS: tuple[System, ...] = (
    System(
        "oncue-http",
        "bench.http_bench",
        None,
        "oncue serve --workers 8 --store memory:// --queue-size 2000000 --log-level WARNING",
        variant="oncue",
        oncue=True,
    ),
    System(
        "oncue-http-auth",
        "bench.http_bench",
        None,
        "oncue-http with ONCUE_API_TOKENS set: every request carries a bearer token",
        variant="oncue-auth",
        oncue=True,
    ),
    System(
        "hypercorn-bare",
        "bench.http_bench",
        None,
        "bare ASGI endpoint (bench/http_bare.py) on the same Hypercorn trio worker",
        variant="bare",
    ),
)
DURABLE_SYSTEMS: tuple[System, ...] = (
    System(
        "oncue-sqlite",
        "bench.engine",
        None,
        "open_engine(workers=8, store='sqlite:///<tmp>/oncue.db'), WAL, synchronous=normal",
        backing="sqlite",
        oncue=True,
        store="sqlite",
    ),
    System(
        "oncue-postgres",
        "bench.engine",
        None,
        "open_engine(workers=8, store='postgresql://.../oncue_bench?schema=oncue_engine')",
        backing="postgres",
        oncue=True,
        store="postgres",
    ),
    System(
        "oncue-sqlite-batch",
        "bench.engine",
        None,
        "oncue-sqlite, submit_many() of 1,000 tasks per call",
        backing="sqlite",
        variant="batch",
        oncue=True,
        store="sqlite",
    ),
    System(
        "oncue-sqlite-concurrent",
        "bench.engine",
        None,
        "oncue-sqlite, one awaited submit() per task from 64 concurrent callers",
        backing="sqlite",
        variant="concurrent",
        oncue=True,
        store="sqlite",
    ),
    System(
        "oncue-postgres-batch",
        "bench.engine",
        None,
        "oncue-postgres, submit_many() of 1,000 tasks per call",
        backing="postgres",
        variant="batch",
        oncue=True,
        store="postgres",
    ),
    System(
        "oncue-postgres-2nodes",
        "bench.engine",
        None,
        "oncue-postgres-batch, plus a second engine (8 workers) in another process on the schema",
        backing="postgres",
        variant="batch",
        oncue=True,
        store="postgres",
        nodes=2,
    ),
    System(
        "oncue-redis",
        "bench.engine",
        None,
        "open_engine(workers=8, store='redis://127.0.0.1:6379/13?prefix=oncue_bench')",
        backing="redis",
        oncue=True,
        store="redis",
    ),
    System(
        "oncue-redis-batch",
        "bench.engine",
        None,
        "oncue-redis, submit_many() of 1,000 tasks per call",
        backing="redis",
        variant="batch",
        oncue=True,
        store="redis",
    ),
    System(
        "oncue-redis-2nodes",
        "bench.engine",
        None,
        "oncue-redis-batch, plus a second engine (8 workers) in another process on the prefix",
        backing="redis",
        variant="batch",
        oncue=True,
        store="redis",
        nodes=2,
    ),
)
QUEUES = tuple(system.name for system in SYSTEMS)
SYSTEMS += HTTP_SYSTEMS + DURABLE_SYSTEMS
BY_NAME = {system.name: system for system in SYSTEMS}
ONCUE_VARIANTS = frozenset({"oncue-batch", "oncue-nowait"})  # noop only
IN_MEMORY = ("oncue", "oncue-batch", "oncue-nowait", "huey-memory", "taskiq-memory")
SLOW = ("rq", "procrastinate", "huey-sqlite", "celery")  # ~100-500 tasks/s here: fewer per run


@dataclass(frozen=True)
class Case:
    """One row group of the report: a workload with its sizes per mode."""

    name: str
    workload: str  # the driver flow: noop | sleep | priority | depth | http-single | http-batch
    title: str
    unit: str  # "tasks/s" (higher is better) or "s" (lower is better)
    sizes: dict[str, dict[str, Any]]  # mode -> Spec fields
    systems: tuple[str, ...] = QUEUES
    # system -> mode -> Spec fields overriding `sizes` (scaled down where a peer cannot)
    scaled: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    notes: str = ""


def _slow(full: dict[str, Any], quick: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    return {name: {"full": full, "quick": quick} for name in SLOW}


SMOKE = {"runs": 1, "warmup": 2, "timeout": 60.0}
CASES: tuple[Case, ...] = (
    Case(
        "noop-10k",
        "noop",
        "10,000 no-op tasks (double), submit then drain",
        "tasks/s",
        {
            "full": {"n": 10_000, "runs": 3, "timeout": 300.0},
            "quick": {"n": 2_000, "runs": 3},
            "smoke": {"n": 20, **SMOKE},
        },
        scaled=_slow({"n": 2_000}, {"n": 500}),
        notes="rq, procrastinate, celery and huey-sqlite run 2,000 tasks per run (they do "
        "~100-500/s on this machine).",
    ),
    Case(
        "noop-100k",
        "noop",
        "100,000 no-op tasks, the in-memory systems",
        "tasks/s",
        {
            "full": {"n": 100_000, "runs": 3, "timeout": 300.0},
            "quick": {"n": 20_000, "runs": 3},
            "smoke": {"n": 50, **SMOKE},
        },
        systems=IN_MEMORY,
    ),
    Case(
        "sleep",
        "sleep",
        "2,000 tasks sleeping 10 ms each, concurrency 100",
        "tasks/s",
        {
            "full": {"n": 2_000, "runs": 3, "concurrency": 100, "timeout": 300.0},
            "quick": {"n": 500, "runs": 3, "concurrency": 100},
            "smoke": {"n": 20, "concurrency": 10, **SMOKE},
        },
        systems=tuple(name for name in QUEUES if name not in ONCUE_VARIANTS),
        scaled=_slow({"n": 1_000}, {"n": 300}),
        notes="rq: 16 SimpleWorker processes (worker-pool), not 100. rq, procrastinate, celery "
        "and huey-sqlite run 1,000 tasks per run.",
    ),
    Case(
        "priority",
        "priority",
        "10,000 low tasks queued, then 100 high: seconds until all high are done",
        "s",
        {
            "full": {"n": 10_000, "high": 100, "runs": 3, "timeout": 300.0},
            "quick": {"n": 3_000, "high": 100, "runs": 3},
            "smoke": {"n": 30, "high": 5, **SMOKE},
        },
        systems=tuple(name for name in QUEUES if name not in {"oncue-batch", "arq"}),
        scaled=_slow({"n": 3_000}, {"n": 1_000}),
        notes="rq, procrastinate, celery and huey-sqlite queue 3,000 low tasks, not 10,000 "
        "(filling 10,000 one call at a time, three times, takes them minutes). arq and taskiq's "
        "InMemoryBroker have no priorities; Dramatiq and RQ use a high "
        "queue, Celery Redis priority steps, Huey, procrastinate and oncue native priorities.",
    ),
    Case(
        "depth-1k",
        "depth",
        "throughput with 1,000 tasks queued behind the measured ones",
        "tasks/s",
        {
            "full": {"depth": 1_000, "window": 1_000, "runs": 3},
            "quick": {"depth": 1_000, "window": 300, "runs": 3},
            "smoke": {"depth": 10, "window": 10, "skip": 5, **SMOKE},
        },
        systems=tuple(
            name for name in QUEUES if name not in {"oncue-batch", "oncue-nowait", "taskiq-memory"}
        ),
        scaled=_slow({"window": 300}, {"window": 100}),
    ),
    Case(
        "depth-1M",
        "depth",
        "throughput with 1,000,000 tasks queued (fewer for the Redis/PostgreSQL/SQLite peers)",
        "tasks/s",
        {
            "full": {"depth": 1_000_000, "window": 1_000, "runs": 3, "timeout": 600.0},
            "quick": {"depth": 100_000, "window": 300, "runs": 3, "timeout": 300.0},
            "smoke": {"depth": 100, "window": 10, "skip": 5, **SMOKE},
        },
        systems=tuple(
            name for name in QUEUES if name not in {"oncue-batch", "oncue-nowait", "taskiq-memory"}
        ),
        scaled={
            **{
                name: {"full": {"depth": 50_000}, "quick": {"depth": 10_000}}
                for name in ("dramatiq", "arq", "rq", "celery", "procrastinate", "huey-sqlite")
            },
            **_slow({"depth": 50_000, "window": 300}, {"depth": 10_000, "window": 100}),
            "celery": {"full": {"depth": 20_000, "window": 300}, "quick": {"depth": 5_000}},
        },
        notes="Filling 1M tasks through a network queue one call at a time takes many minutes; "
        "the Redis/PostgreSQL/SQLite peers get 50,000 (celery 20,000: it enqueues ~300/s here; "
        "procrastinate and rq fill in bulk).",
    ),
)
CASES += (
    Case(
        "memory",
        "memory",
        "RSS of the memory store: bytes per queued task, per finished task kept, after a drain",
        "bytes/task",
        {
            "full": {"depth": 1_000_000, "runs": 1, "timeout": 600.0},
            "quick": {"depth": 200_000, "runs": 1, "timeout": 300.0},
            "smoke": {"depth": 1_000, **SMOKE},
        },
        systems=("oncue",),
        notes="oncue alone (the peers do not bound what they keep). Finished tasks beyond the "
        "memory store's max_finished (100,000) are dropped oldest first.",
    ),
)
HTTP = ("oncue-http", "oncue-http-auth", "hypercorn-bare")
DURABLE_PEERS = ("huey-sqlite", "dramatiq", "arq", "rq", "celery", "procrastinate")
CASES += (
    Case(
        "durable",
        "noop",
        "2,000 no-op tasks on durable stores (oncue: SQLite, PostgreSQL, Redis), submit then drain",
        "tasks/s",
        {
            "full": {"n": 2_000, "runs": 3, "timeout": 300.0},
            "quick": {"n": 500, "runs": 3},
            "smoke": {"n": 10, **SMOKE},
        },
        systems=(
            "oncue-sqlite",
            "oncue-postgres",
            "oncue-redis",
            "oncue-sqlite-batch",
            "oncue-sqlite-concurrent",
            "oncue-postgres-batch",
            "oncue-redis-batch",
            "oncue-postgres-2nodes",
            "oncue-redis-2nodes",
            *DURABLE_PEERS,
        ),
        notes="Ratios are quoted for oncue on SQLite; oncue on PostgreSQL and on Redis are in "
        "their own rows (their natural peers: procrastinate; Dramatiq, arq, RQ).",
    ),
    Case(
        "http-single",
        "http-single",
        "POST /api/v1/tasks, one task per request, 32 keep-alive connections",
        "tasks/s",
        {
            "full": {"n": 5_000, "runs": 3, "concurrency": 32},
            "quick": {"n": 1_000, "runs": 3, "concurrency": 32},
            "smoke": {"n": 20, "concurrency": 4, **SMOKE},
        },
        systems=HTTP,
        notes="The peer here is the framework ceiling: a bare ASGI endpoint on the same "
        "Hypercorn (issue 4 aims at >= 0.8x of it). Client: raw HTTP/1.1 on trio, same process "
        "for both, sharing the two cores with the server.",
    ),
    Case(
        "http-batch",
        "http-batch",
        "POST /api/v1/tasks/batch, 100 tasks per request, 8 connections",
        "tasks/s",
        {
            "full": {"n": 500, "runs": 3, "concurrency": 8, "extra": {"batch": 100}},
            "quick": {"n": 100, "runs": 3, "concurrency": 8, "extra": {"batch": 100}},
            "smoke": {"n": 4, "concurrency": 2, "extra": {"batch": 10}, **SMOKE},
        },
        systems=HTTP,
        notes="Bare endpoint: parses the same 100-task body and answers one object per task.",
    ),
)
CASE_BY_NAME = {case.name: case for case in CASES}
WORKLOADS = {
    "noop": ("noop-10k", "noop-100k"),
    "sleep": ("sleep",),
    "priority": ("priority",),
    "depth": ("depth-1k", "depth-1M"),
    "http": ("http-single", "http-batch"),
    "durable": ("durable",),
    "memory": ("memory",),
}


def spec_for(case: Case, system: System, mode: str) -> dict[str, Any]:
    """The Spec fields one driver run gets (see bench/peers/_common.Spec)."""
    spec: dict[str, Any] = {"workload": case.workload, "variant": system.variant}
    if system.store != "memory":
        spec["extra"] = {"store": system.store, "nodes": system.nodes}
    spec.update(case.sizes[mode])
    spec.update(case.scaled.get(system.name, {}).get(mode, {}))
    return spec
