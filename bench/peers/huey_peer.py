"""Huey in this process: MemoryHuey or SqliteHuey (variant), a thread-worker consumer.

Settings: `create_consumer(workers=concurrency, worker_type="thread", periodic=False)`, the
fastest in-process form Huey documents; results on (the flows read every one back).
Priority: native (`task(x, priority=n)`, higher first).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from huey import MemoryHuey, SqliteHuey
from huey.api import Result

from bench.peers._common import Deadline, check_value, read_spec, run_flow, versions_of

PRIORITY = {None: None, "low": 0, "high": 10}


class HueyAdapter:
    def __init__(self, variant: str) -> None:
        self.variant = variant
        self.tmp = tempfile.TemporaryDirectory(prefix="bench-huey-")
        self.consumer: Any = None
        self.generation = 0
        self.reset()

    def reset(self) -> None:
        self.generation += 1
        if self.variant == "sqlite":
            path = Path(self.tmp.name) / f"huey-{self.generation}.db"
            self.huey: Any = SqliteHuey("bench", filename=str(path))
        else:
            self.huey = MemoryHuey("bench")
        self.tasks = {
            "double": self.huey.task(name="double")(double),
            "nap": self.huey.task(name="nap")(nap),
        }

    def start_workers(self, concurrency: int) -> None:
        self.consumer = self.huey.create_consumer(
            workers=concurrency, worker_type="thread", periodic=False
        )
        self.consumer.start()

    def stop_workers(self) -> None:
        if self.consumer is not None:
            self.consumer.stop(graceful=False)
            self.consumer = None

    def submit(self, kind: str, x: int, priority: str | None = None) -> Result:
        if priority is None:
            return self.tasks[kind](x)
        return self.tasks[kind](x, priority=PRIORITY[priority])

    def result(self, handle: Result, x: int, deadline: Deadline) -> float:
        while True:
            value = handle.get(blocking=False)
            if value is not None:
                return check_value(handle.task.name, x, value)
            deadline.check("waiting for a result")
            time.sleep(0.0005)


def double(x: int) -> list[Any]:
    return [2 * x, time.time()]


def nap(x: int) -> list[Any]:
    started = time.time()
    time.sleep(0.01)
    return [x, started]


if __name__ == "__main__":
    spec = read_spec()
    run_flow(HueyAdapter(spec.variant or "memory"), spec, versions_of("huey"))
