"""The Celery app for the bench: Redis broker and Redis results (db from BENCH_REDIS_URL).

Priority follows Celery's Redis docs: `queue_order_strategy: "priority"` with priority steps
(on Redis 0 is the highest) and `worker_prefetch_multiplier=1` (BENCH_CELERY_PREFETCH) so the
worker does not sit on a prefetched backlog of low tasks; both only for the priority workload
(BENCH_CELERY_PRIORITY), so the other workloads keep Celery's defaults.
"""

from __future__ import annotations

import os
import time
from typing import Any

from celery import Celery

from bench.peers._common import REDIS_URL

app = Celery("bench", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_default_queue="bench",
    worker_prefetch_multiplier=int(os.environ.get("BENCH_CELERY_PREFETCH", "4")),
    broker_transport_options=(
        {"queue_order_strategy": "priority", "priority_steps": [0, 3, 6, 9]}
        if os.environ.get("BENCH_CELERY_PRIORITY")
        else {}
    ),
    worker_hijack_root_logger=False,
    result_extended=False,
)


@app.task(name="double")
def double(x: int) -> list[Any]:
    return [2 * x, time.time()]


@app.task(name="nap")
def nap(x: int) -> list[Any]:
    started = time.time()
    time.sleep(0.01)
    return [x, started]
