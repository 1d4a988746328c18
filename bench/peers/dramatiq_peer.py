"""Dramatiq on Redis: this process produces, one worker process consumes.

Settings: RedisBroker + Redis results, `--processes 1 --threads concurrency` (one process to
match the others' one consumer; threads are Dramatiq's concurrency knob).  Results read with
`message.get_result(block=True)`.  Priority: a separate "high" queue plus actor priority.
"""

from __future__ import annotations

import sys
from typing import Any

import redis

from bench.peers import dramatiq_tasks as tasks
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


class DramatiqAdapter:
    def __init__(self) -> None:
        self.worker: Any = None
        self.client = redis.Redis.from_url(REDIS_URL)

    def reset(self) -> None:
        self.client.flushdb()

    def start_workers(self, concurrency: int) -> None:
        argv = [sys.executable, "-m", "dramatiq", "bench.peers.dramatiq_tasks"]
        argv += ["--processes", "1", "--threads", str(concurrency)]
        self.worker = start_process(argv)

    def stop_workers(self) -> None:
        stop_process(self.worker)
        self.worker = None

    def submit(self, kind: str, x: int, priority: str | None = None) -> Any:
        actor = tasks.double_high if priority == "high" else getattr(tasks, kind)
        return kind, actor.send(x)

    def result(self, handle: Any, x: int, deadline: Deadline) -> float:
        kind, message = handle
        deadline.check("waiting for a result")
        return check_value(kind, x, message.get_result(block=True, timeout=120_000))


if __name__ == "__main__":
    run_flow(DramatiqAdapter(), read_spec(), versions_of("dramatiq", "redis"))
