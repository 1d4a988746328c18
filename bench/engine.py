"""oncue's side of every in-process workload (memory store), timed like the peers.

Run by the orchestrator as ``python -m bench.engine '<spec json>'`` in the project's venv; it
prints one ``BENCH-RESULT`` line.  Run by hand for a quick look at the engine alone:
``python -m bench.engine`` (100,000 no-op tasks, 8 workers, prints tasks/s and p50/p99).

Timed as the peers are: the clock stops once every result has been read back and checked,
through oncue's own bulk read (``wait_many``: one message to the store for all of them, as
Celery's ``join_native`` is one round trip). The moment ``wait_idle()`` returned is reported
beside it as ``idle_samples``, a labelled extra that is NOT comparable with the peers (it
stops before any result is read). Variant ``batch`` submits with ``submit_many`` (1,000 a
call), ``nowait`` with ``submit_nowait``, ``concurrent`` with one awaited ``submit()`` per
task from 64 concurrent callers.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import trio

from bench.peers._common import PG_DSN, REDIS_URL, Spec, emit, percentile, read_spec, versions_of
from oncue.actors import (
    Engine,
    Registry,
    Submission,
    Task,
    TaskContext,
    open_engine,
    register_builtins,
)

registry = register_builtins(Registry())


@registry.task("bench.double", timeout=60)
async def double(ctx: TaskContext, x: int) -> list[Any]:
    return [2 * x, time.time()]


@registry.task("bench.nap", timeout=60)
async def nap(ctx: TaskContext, x: int) -> list[Any]:
    started = time.time()
    await trio.sleep(0.01)
    return [x, started]


NAMES = {"double": "bench.double", "nap": "bench.nap"}


async def submit_all(engine: Engine, spec: Spec, kind: str, xs: range, **options: Any) -> list[Any]:
    """The submitted tasks (pending), in submission order."""
    name = NAMES[kind]
    if spec.variant == "batch" or options.pop("batch", False):
        tasks: list[Task] = []
        for first in range(xs.start, xs.stop, 1000):
            chunk = range(first, min(first + 1000, xs.stop))
            tasks += await engine.submit_many(Submission(name, x, **options) for x in chunk)
        return tasks
    if spec.variant == "nowait":
        return [await _nowait(engine, name, x, **options) for x in xs]
    if spec.variant == "concurrent":
        return await _concurrently(engine, name, xs, **options)
    return [await engine.submit(name, x, **options) for x in xs]


CALLERS = 64  # variant "concurrent": callers each awaiting one submit() at a time


async def _concurrently(engine: Engine, name: str, xs: range, **options: Any) -> list[Any]:
    """One awaited submit() per task from CALLERS concurrent callers (what a server under load
    does: many requests, one task each), caller c taking every CALLERS-th x from the c-th."""
    tasks: list[Any] = [None] * len(xs)

    async def caller(first: int) -> None:
        for place in range(first, len(xs), CALLERS):
            tasks[place] = await engine.submit(name, xs[place], **options)

    async with trio.open_nursery() as nursery:
        for first in range(min(CALLERS, len(xs))):
            nursery.start_soon(caller, first)
    return tasks


async def _nowait(engine: Engine, name: str, x: int, **options: Any) -> Task:
    """submit_nowait, yielding now and then (and whenever the store's mailbox is full)."""
    while True:
        try:
            task = engine.submit_nowait(name, x, **options)
        except trio.WouldBlock:
            await trio.lowlevel.checkpoint()
            continue
        if x % 256 == 0:
            await trio.lowlevel.checkpoint()
        return task


async def started_at(engine: Engine, tasks: list[Any], kind: str) -> list[float]:
    """Wait for every task (one message), check its result and return when each started."""
    return checked_starts(await engine.wait_many([task.id for task in tasks]), kind)


def checked_starts(done: list[Task], kind: str) -> list[float]:
    """Check every finished task's result (its value) and return when each body started."""
    starts = []
    for x, task in enumerate(done):
        got, began = task.result
        want = 2 * x if kind == "double" else x
        if got != want:
            raise AssertionError(f"task {task.id} returned {got!r}, expected {want!r}")
        starts.append(began)
    return starts


def store_url(spec: Spec, scratch: str) -> str:
    """The store this run uses: memory, a SQLite file in `scratch`, a fresh PG schema or Redis
    prefix."""
    kind = spec.extra.get("store", "memory")
    if kind == "sqlite":
        return f"sqlite:///{scratch}/oncue.db"
    if kind == "postgres":
        import psycopg

        admin_dsn = PG_DSN.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            query = "SELECT 1 FROM pg_database WHERE datname = 'oncue_bench'"
            if not admin.execute(query).fetchone():
                admin.execute("CREATE DATABASE oncue_bench")
        with psycopg.connect(PG_DSN, autocommit=True) as connection:
            connection.execute("DROP SCHEMA IF EXISTS oncue_engine CASCADE")
        return f"{PG_DSN}?schema=oncue_engine"
    if kind == "redis":
        import redis

        with redis.Redis.from_url(REDIS_URL) as client:  # a fresh prefix: drop the last run's
            stale = list(client.scan_iter(match="{oncue_bench}:*", count=1000))
            for start in range(0, len(stale), 1000):
                client.delete(*stale[start : start + 1000])
        return f"{REDIS_URL}?prefix=oncue_bench"
    return "memory://"


async def throughput(spec: Spec) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-oncue-") as scratch:
        store = store_url(spec, scratch)
        with other_nodes(store, spec.extra.get("nodes", 1) - 1, spec.concurrency):
            return await _throughput(spec, store)


@contextmanager
def other_nodes(store: str, count: int, workers: int) -> Iterator[None]:
    """``count`` more engines on the shared ``store``, each in a process of its own."""
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "bench.node", store, str(workers)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(count)
    ]
    try:
        for node in nodes:
            assert node.stdout is not None
            if node.stdout.readline().strip() != "ready":
                raise RuntimeError("a bench node did not start")
        yield
    finally:
        for node in nodes:
            node.send_signal(signal.SIGTERM)
        for node in nodes:
            try:
                node.wait(timeout=30)
            except subprocess.TimeoutExpired:
                node.kill()
                node.wait()


async def _throughput(spec: Spec, store: str) -> dict[str, Any]:
    queue_size = spec.n + spec.warmup + 10
    if store == "memory://":  # keep every finished task of a run (the default keeps 100,000)
        store = f"memory://?max_finished={max(100_000, queue_size)}"
    options = {"workers": spec.concurrency, "queue_size": queue_size, "store": store}
    async with open_engine(registry=registry, **options) as engine:
        await submit_all(engine, spec, spec.kind, range(spec.warmup))
        await engine.wait_idle()
        samples, idle_samples, enqueue_rates, p50s, p99s = [], [], [], [], []
        for _ in range(spec.runs):
            idle: list[float] = []
            async with trio.open_nursery() as nursery:
                began = time.perf_counter()
                submitted = time.time()
                tasks = await submit_all(engine, spec, spec.kind, range(spec.n))
                enqueued = time.perf_counter() - began
                nursery.start_soon(_note_idle, engine, idle)
                done = await engine.wait_many([task.id for task in tasks])
                starts = checked_starts(done, spec.kind)
                elapsed = time.perf_counter() - began
            # created_at: the store's wall-clock admission time (submit_nowait: the hand-over).
            latencies = [s - (t.created_at or submitted) for s, t in zip(starts, done, strict=True)]
            samples.append(spec.n / elapsed)
            idle_samples.append(spec.n / (idle[0] - began))
            enqueue_rates.append(spec.n / enqueued)
            p50s.append(percentile(latencies, 50) * 1000)
            p99s.append(percentile(latencies, 99) * 1000)
            await forget(engine, tasks)
    return {
        "samples": samples,
        "idle_samples": idle_samples,
        "enqueue": enqueue_rates,
        "p50_ms": p50s,
        "p99_ms": p99s,
    }


async def _note_idle(engine: Engine, moment: list[float]) -> None:
    """The extra, not comparable figure: when wait_idle() returned (no result read yet)."""
    await engine.wait_idle()
    moment.append(time.perf_counter())


async def forget(engine: Engine, tasks: list[Task]) -> None:
    """Delete finished tasks so the next run starts from an equally empty store."""
    for task in tasks:
        await engine.delete(task.id)


async def priority(spec: Spec) -> dict[str, Any]:
    samples, lows_first = [], []
    queue_size = spec.n + spec.high + 10
    for _ in range(spec.runs):
        async with open_engine(
            registry=registry, workers=spec.concurrency, queue_size=queue_size
        ) as engine:
            await engine.pause()
            lows = await submit_all(engine, spec, "double", range(spec.n), priority="low")
            await engine.resume()
            await engine.wait(lows[0].id)
            began = time.perf_counter()
            highs = await submit_all(engine, spec, "double", range(spec.high), priority="high")
            last_high = max(await started_at(engine, highs, "double"))
            samples.append(time.perf_counter() - began)
            await engine.wait_idle()
            low_starts = await started_at(engine, lows[:2000], "double")
            lows_first.append(sum(1 for s in low_starts if s <= last_high))
    return {"samples": samples, "unit": "s", "lows_started_first": lows_first}


async def depth(spec: Spec) -> dict[str, Any]:
    measured_count = spec.skip + spec.runs * spec.window
    total = spec.depth + measured_count
    async with open_engine(
        registry=registry, workers=spec.concurrency, queue_size=total + 10
    ) as engine:
        await engine.pause()
        began = time.perf_counter()
        tasks = await submit_all(engine, spec, "double", range(total), batch=True)
        fill_s = time.perf_counter() - began
        await engine.resume()
        starts = sorted(await started_at(engine, tasks[:measured_count], "double"))
        await engine.pause()  # the rest is backlog: leave it unrun, the engine drops it on exit
        samples = []
        for k in range(spec.runs):
            first = spec.skip + k * spec.window
            samples.append(spec.window / (starts[first + spec.window - 1] - starts[first]))
        with trio.move_on_after(5):
            await engine.shutdown(grace=0)
    return {"samples": samples, "fill_per_s": total / fill_s, "queued": total}


def rss_bytes() -> int:
    """This process's resident set size, from /proc (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def memory(spec: Spec) -> dict[str, Any]:
    """RSS per queued and per finished task, and how much comes back after a drain: queue
    ``depth`` tasks paused, run them all, then read the RSS again (the memory store keeps its
    default 100,000 finished tasks, dropping the older ones); then run as many again 10,000 at
    a time (a steady stream) and read it once more: it should not grow."""
    samples, per_finished, kept_after, streamed_after = [], [], [], []
    for _ in range(spec.runs):
        total = spec.depth
        async with open_engine(
            registry=registry, workers=spec.concurrency, queue_size=total + 10
        ) as engine:
            await submit_all(engine, spec, "double", range(spec.warmup), batch=True)
            await engine.wait_idle()
            start = rss_bytes()
            await engine.pause()
            await submit_all(engine, spec, "double", range(total), batch=True)
            queued = rss_bytes()
            await engine.resume()
            await engine.wait_idle()
            gc.collect()
            drained = rss_bytes()
            kept = (await engine.stats()).successful
            for first in range(0, total, STREAM):
                xs = range(first, min(first + STREAM, total))
                await submit_all(engine, spec, "double", xs, batch=True)
                await engine.wait_idle()
            gc.collect()
            streamed = rss_bytes()
        samples.append((queued - start) / total)
        per_finished.append((drained - start) / kept)
        kept_after.append((drained - start) / max(1, queued - start))
        streamed_after.append((streamed - start) / max(1, queued - start))
    return {
        "samples": samples,
        "unit": "bytes/queued task",
        "bytes_per_finished_kept": per_finished,
        "drained_share_of_queued": kept_after,
        "streamed_share_of_queued": streamed_after,
    }


STREAM = 10_000  # memory: tasks in flight at a time in the steady stream


async def main(spec: Spec) -> dict[str, Any]:
    flows = {
        "noop": throughput,
        "sleep": throughput,
        "priority": priority,
        "depth": depth,
        "memory": memory,
    }
    with trio.fail_after(spec.timeout):
        return await flows[spec.workload](spec)


if __name__ == "__main__":
    if len(sys.argv) < 2:  # by hand: issue 3's figure
        sys.argv.append(json.dumps({"workload": "noop", "n": 100_000, "runs": 3}))
    spec = read_spec()
    versions = versions_of("oncue", "trio")
    try:
        emit({"ok": True, "versions": versions, **trio.run(main, spec)})
    except Exception as error:
        emit({"ok": False, "error": f"{type(error).__name__}: {error}", "versions": versions})
        raise
