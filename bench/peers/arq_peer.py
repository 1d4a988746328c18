"""arq on Redis: this process produces (its own event loop), one worker process consumes.

Settings: `max_jobs=concurrency`, `poll_delay=0.01`; results read with
`job.result(poll_delay=0.0005)`.  Priority: arq has none (one sorted set per queue, scored by
enqueue time; a second queue needs a second worker), so that workload is not run.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from arq import create_pool

from bench.peers._common import (
    Deadline,
    check_value,
    emit,
    read_spec,
    run_flow,
    start_process,
    stop_process,
    versions_of,
)
from bench.peers.arq_tasks import redis_settings


class ArqAdapter:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.pool = self.loop.run_until_complete(create_pool(redis_settings()))
        self.worker: Any = None

    def reset(self) -> None:
        self.loop.run_until_complete(self.pool.flushdb())

    def start_workers(self, concurrency: int) -> None:
        argv = [sys.executable, "-m", "arq", "bench.peers.arq_tasks.WorkerSettings"]
        self.worker = start_process(argv, {"ARQ_MAX_JOBS": str(concurrency)})

    def stop_workers(self) -> None:
        stop_process(self.worker)
        self.worker = None

    def submit(self, kind: str, x: int, priority: str | None = None) -> Any:
        return kind, self.loop.run_until_complete(self.pool.enqueue_job(kind, x))

    def result(self, handle: Any, x: int, deadline: Deadline) -> float:
        kind, job = handle
        deadline.check("waiting for a result")
        value = self.loop.run_until_complete(job.result(timeout=120, poll_delay=0.0005))
        return check_value(kind, x, value)


if __name__ == "__main__":
    spec = read_spec()
    versions = versions_of("arq", "redis")
    if spec.workload == "priority":
        emit(
            {
                "ok": False,
                "unsupported": True,
                "versions": versions,
                "error": "arq has no task priorities (one queue, ordered by enqueue time)",
            }
        )
    else:
        run_flow(ArqAdapter(), spec, versions)
