"""taskiq's InMemoryBroker on this process's asyncio loop (noop and sleep only).

Settings: `InMemoryBroker(max_async_tasks=concurrency, max_stored_results=-1)` (the default keeps
only the last 100 results); results from its in-memory result
backend, polled with `wait_result(check_interval=0.0005)` (the 0.2 s default would measure the
poll, not taskiq).  Priority: the broker has none.  Depth: it has no queue to fill, since
`kiq` starts each task at once (bounded only by a semaphore), so there is no "already queued".
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from taskiq import InMemoryBroker

from bench.peers._common import (
    Deadline,
    Spec,
    check_value,
    emit,
    percentile,
    read_spec,
    versions_of,
)


async def main(spec: Spec) -> dict[str, Any]:
    if spec.workload not in {"noop", "sleep"}:
        raise NotImplementedError(f"taskiq InMemoryBroker has no {spec.workload} workload")
    broker = InMemoryBroker(max_async_tasks=spec.concurrency, max_stored_results=-1)

    @broker.task(task_name="double")
    async def double(x: int) -> list[Any]:
        return [2 * x, time.time()]

    @broker.task(task_name="nap")
    async def nap(x: int) -> list[Any]:
        started = time.time()
        await asyncio.sleep(spec.sleep_s)
        return [x, started]

    task = double if spec.kind == "double" else nap
    deadline = Deadline(spec.timeout)
    await broker.startup()
    for x in range(spec.warmup):
        await (await task.kiq(x)).wait_result(check_interval=0.0005)
    samples, enqueue_rates, p50s, p99s = [], [], [], []
    for _ in range(spec.runs):
        submitted, handles = [], []
        began = time.perf_counter()
        for x in range(spec.n):
            submitted.append(time.time())
            handles.append(await task.kiq(x))
        enqueued = time.perf_counter() - began
        started = []
        for x, handle in enumerate(handles):
            result = await handle.wait_result(check_interval=0.0005, timeout=spec.timeout)
            started.append(check_value(spec.kind, x, result.return_value))
            if x % 1000 == 0:
                deadline.check("waiting for results")
        elapsed = time.perf_counter() - began
        latencies = [s - t for s, t in zip(started, submitted, strict=True)]
        samples.append(spec.n / elapsed)
        enqueue_rates.append(spec.n / enqueued)
        p50s.append(percentile(latencies, 50) * 1000)
        p99s.append(percentile(latencies, 99) * 1000)
    await broker.shutdown()
    return {"samples": samples, "enqueue": enqueue_rates, "p50_ms": p50s, "p99_ms": p99s}


if __name__ == "__main__":
    spec = read_spec()
    versions = versions_of("taskiq")
    try:
        emit({"ok": True, "versions": versions, **asyncio.run(main(spec))})
    except NotImplementedError as error:
        emit({"ok": False, "unsupported": True, "error": str(error), "versions": versions})
