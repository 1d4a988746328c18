"""Dramatiq actors for the bench, on the Redis broker with Redis results (db from BENCH_REDIS_URL).

The worker runs `python -m dramatiq bench.peers.dramatiq_tasks --processes 1 --threads N`.
`priority` is Dramatiq's own actor option (lower runs first among prefetched messages); high
tasks go to their own queue, as its docs recommend for the Redis broker.
"""

from __future__ import annotations

import time
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

from bench.peers._common import REDIS_URL

broker = RedisBroker(url=REDIS_URL)
broker.add_middleware(Results(backend=RedisBackend(url=REDIS_URL)))
dramatiq.set_broker(broker)


@dramatiq.actor(store_results=True, max_retries=0, priority=10)
def double(x: int) -> list[Any]:
    return [2 * x, time.time()]


@dramatiq.actor(store_results=True, max_retries=0, priority=0, queue_name="high")
def double_high(x: int) -> list[Any]:
    return [2 * x, time.time()]


@dramatiq.actor(store_results=True, max_retries=0)
def nap(x: int) -> list[Any]:
    started = time.time()
    time.sleep(0.01)
    return [x, started]
