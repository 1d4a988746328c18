"""RQ on Redis: this process produces, `rq worker` processes consume.

Settings: `SimpleWorker` (no fork per job: the default forking Worker manages ~84 jobs/s here),
one worker process for noop/priority/depth.  RQ has no in-process concurrency, so the sleep
workload runs `rq worker-pool -n 16` (16 processes, not 100: a hundred Python processes on two
cores measure the OS, not RQ).  Results read with `job.latest_result(timeout=...)` (blocking).
Priority: a "high" queue listed first (`rq worker high bench`), RQ's documented way.
The depth fill uses `enqueue_many` (its bulk API); the fill is not timed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from redis import Redis
from rq import Queue

from bench.peers import rq_tasks
from bench.peers._common import (
    REDIS_URL,
    Deadline,
    check_value,
    read_spec,
    run_flow,
    start_process,
    stop_process,
    versions_of,
)

POOL_SIZE = 16


class RqAdapter:
    def __init__(self) -> None:
        self.client = Redis.from_url(REDIS_URL)
        self.queues = {
            "low": Queue("bench", connection=self.client),
            "high": Queue("high", connection=self.client),
        }
        self.worker: Any = None

    def reset(self) -> None:
        self.client.flushdb()

    def start_workers(self, concurrency: int) -> None:
        rq = str(Path(sys.executable).with_name("rq"))
        common = ["--url", REDIS_URL, "-w", "rq.worker.SimpleWorker", "high", "bench"]
        if concurrency > 8:
            argv = [rq, "worker-pool", "-n", str(POOL_SIZE), *common]
        else:
            argv = [rq, "worker", "--disable-job-desc-logging", *common]
        self.worker = start_process(argv)

    def stop_workers(self) -> None:
        stop_process(self.worker)
        self.worker = None

    def submit(self, kind: str, x: int, priority: str | None = None) -> Any:
        queue = self.queues["high" if priority == "high" else "low"]
        return kind, queue.enqueue(getattr(rq_tasks, kind), x)

    def submit_batch(self, kind: str, xs: range) -> list[Any]:
        """The depth fill: `enqueue_many` (one pipeline per 1,000 jobs), RQ's bulk API."""
        function = getattr(rq_tasks, kind)
        jobs = self.queues["low"].enqueue_many([Queue.prepare_data(function, (x,)) for x in xs])
        return [(kind, job) for job in jobs]

    def result(self, handle: Any, x: int, deadline: Deadline) -> float:
        kind, job = handle
        while True:
            deadline.check("waiting for a result")
            result = job.latest_result(timeout=5)
            if result is not None:
                return check_value(kind, x, result.return_value)
            time.sleep(0.001)


if __name__ == "__main__":
    run_flow(RqAdapter(), read_spec(), versions_of("rq", "redis"))
