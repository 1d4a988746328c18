"""Celery on Redis: this process produces, one `celery worker` process consumes.

Settings: `-P solo` for noop/priority/depth (one task at a time: fastest for no-ops here, the
threads pool with -c 8 measured slower), `-P threads -c concurrency` for the I/O-bound sleep
workload; `--without-gossip --without-mingle --without-heartbeat` (no cluster chatter).
Results read with `AsyncResult.get()`.  Priority: Redis priority steps (see celery_tasks).
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

if len(sys.argv) > 1 and json.loads(sys.argv[1]).get("workload") == "priority":
    # Producer and worker must agree on the priority lists; set before the app is made.
    os.environ["BENCH_CELERY_PRIORITY"] = "1"

from bench.peers import celery_tasks
from bench.peers._common import (
    Deadline,
    check_value,
    read_spec,
    run_flow,
    start_process,
    stop_process,
    versions_of,
)

PRIORITY = {None: None, "low": 9, "high": 0}


class CeleryAdapter:
    def __init__(self, workload: str) -> None:
        self.workload = workload
        self.worker: Any = None

    def reset(self) -> None:
        with celery_tasks.app.connection_for_write() as connection:
            connection.default_channel.client.flushdb()

    def start_workers(self, concurrency: int) -> None:
        argv = [sys.executable, "-m", "celery", "-A", "bench.peers.celery_tasks", "worker"]
        argv += ["--without-gossip", "--without-mingle", "--without-heartbeat", "-l", "warning"]
        if self.workload == "sleep":
            argv += ["-P", "threads", "-c", str(concurrency)]
        else:
            argv += ["-P", "solo"]
        prefetch = "1" if self.workload == "priority" else "4"
        self.worker = start_process(argv, {"BENCH_CELERY_PREFETCH": prefetch})

    def stop_workers(self) -> None:
        stop_process(self.worker)
        self.worker = None

    def submit(self, kind: str, x: int, priority: str | None = None) -> Any:
        task = getattr(celery_tasks, kind)
        if priority is None:
            return kind, task.delay(x)
        return kind, task.apply_async((x,), priority=PRIORITY[priority])

    def result(self, handle: Any, x: int, deadline: Deadline) -> float:
        kind, async_result = handle
        deadline.check("waiting for a result")
        return check_value(kind, x, async_result.get(timeout=120))


if __name__ == "__main__":
    spec = read_spec()
    run_flow(CeleryAdapter(spec.workload), spec, versions_of("celery", "kombu", "redis"))
