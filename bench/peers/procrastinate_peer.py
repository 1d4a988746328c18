"""procrastinate on PostgreSQL: this process defers (sync API), one worker process runs jobs.

Settings: async tasks, `worker --concurrency concurrency` (8 for noop, 100 for sleep), the
psycopg connector.  No result store: a job counts as done when its row is `succeeded`, and its
start time is the `started` event procrastinate records.  Priority: native (higher first).
The depth fill uses `batch_defer` (its bulk API, 1,000 per call); the fill is not timed.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import psycopg

from bench.peers import procrastinate_tasks as tasks
from bench.peers._common import (
    PG_DSN,
    Deadline,
    read_spec,
    run_flow,
    start_process,
    stop_process,
    versions_of,
)

PRIORITY = {None: 0, "low": 0, "high": 10}
STATUS = """
SELECT j.status, (SELECT extract(epoch FROM e.at) FROM procrastinate_events e
                  WHERE e.job_id = j.id AND e.type = 'started' ORDER BY e.id DESC LIMIT 1)
FROM procrastinate_jobs j WHERE j.id = %s
"""


def ensure_database() -> None:
    """Create database oncue_bench and procrastinate's schema in it, if missing."""
    admin = PG_DSN.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        if not connection.execute(
            "SELECT 1 FROM pg_database WHERE datname='oncue_bench'"
        ).fetchone():
            connection.execute("CREATE DATABASE oncue_bench")
    with psycopg.connect(PG_DSN, autocommit=True) as connection:
        if not connection.execute("SELECT to_regclass('procrastinate_jobs')").fetchone()[0]:
            with tasks.app.open():
                tasks.app.schema_manager.apply_schema()


class ProcrastinateAdapter:
    def __init__(self) -> None:
        ensure_database()
        tasks.app.open()
        self.db = psycopg.connect(PG_DSN, autocommit=True)
        self.worker: Any = None

    def reset(self) -> None:
        self.db.execute("TRUNCATE procrastinate_jobs CASCADE")

    def start_workers(self, concurrency: int) -> None:
        argv = [sys.executable, "-m", "procrastinate", "--app=bench.peers.procrastinate_tasks.app"]
        argv += ["worker", "--concurrency", str(concurrency)]
        self.worker = start_process(argv)

    def stop_workers(self) -> None:
        stop_process(self.worker)
        self.worker = None

    def submit(self, kind: str, x: int, priority: str | None = None) -> Any:
        task = getattr(tasks, kind)
        return task.configure(priority=PRIORITY[priority]).defer(x=x)

    def submit_batch(self, kind: str, xs: range) -> list[Any]:
        task = getattr(tasks, kind)
        ids: list[Any] = []
        for first in range(xs.start, xs.stop, 1000):
            chunk = range(first, min(first + 1000, xs.stop))
            ids += task.batch_defer(*({"x": x} for x in chunk))
        return ids

    def result(self, handle: Any, x: int, deadline: Deadline) -> float:
        while True:
            status, started = self.db.execute(STATUS, (handle,)).fetchone()
            if status == "succeeded":
                return float(started)
            if status in {"failed", "cancelled", "aborted"}:
                raise AssertionError(f"job {handle} ended {status}")
            deadline.check("waiting for a job")
            time.sleep(0.002)


if __name__ == "__main__":
    run_flow(ProcrastinateAdapter(), read_spec(), versions_of("procrastinate", "psycopg"))
