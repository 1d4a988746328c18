"""Two `oncue serve` processes on one Redis prefix; one is SIGKILLed halfway through the work.

Every accepted task must complete; the dead node's tasks run on the other once their leases
expire. Only what the dead node owned at the kill (claimed, running, or finished but not yet
committed) may run twice. The handler appends "<pid> <task id>" to a file with O_APPEND at the
start of every execution, so the file is the ground truth of what ran where.
"""

from __future__ import annotations

import signal
import textwrap
from collections import Counter
from pathlib import Path

import httpx
import pytest
from live_servers import REDIS, RUN, drop_redis_prefix, redis_or_skip
from test_two_nodes import BOUND, poll, start, stop  # the PostgreSQL test's: same processes

TASKS = 5000
WORKERS = 4
LEASE = 3.0  # the handler's lease: the dead node's tasks come back this long after the kill

HANDLERS = f"""
import os

import trio

from oncue.actors import Registry

registry = Registry()
runs = os.open(os.environ["ONCUE_TEST_RUNS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)


@registry.task("record", max_retries=0, lease={LEASE})
async def record(ctx, payload):
    os.write(runs, f"{{os.getpid()}} {{ctx.task_id}}\\n".encode())  # appended atomically
    await trio.sleep(0.002)
    return payload
"""


def runs(directory: Path) -> list[tuple[int, str]]:
    path = directory / "runs"
    lines = path.read_text().splitlines() if path.exists() else []
    return [(int(pid), task_id) for pid, task_id in (line.split() for line in lines)]


@pytest.fixture
def prefix():
    redis_or_skip()
    name = f"oncue_test_{RUN}_two_nodes"
    yield name
    drop_redis_prefix(name)


def test_a_node_killed_mid_work_loses_nothing_and_reruns_only_what_it_owned(
    tmp_path, prefix
) -> None:
    import redis

    (tmp_path / "handlers_two_nodes.py").write_text(textwrap.dedent(HANDLERS))
    store = f"{REDIS}?prefix={prefix}"
    keys = f"{{{prefix}}}:"
    survivor, url = start(tmp_path, store)
    victim, _ = start(tmp_path, store)
    client = redis.Redis.from_url(REDIS, decode_responses=True)
    try:
        with httpx.Client(base_url=url, timeout=BOUND) as http:
            accepted: list[str] = []
            for first in range(0, TASKS, 1000):
                batch = [{"type": "record", "payload": n} for n in range(first, first + 1000)]
                response = http.post("/api/v1/tasks/batch", json={"tasks": batch})
                assert response.status_code == 201, response.text
                accepted += [task["id"] for task in response.json()["tasks"]]
            poll(lambda: len(runs(tmp_path)) >= TASKS // 2, "half of the tasks to run")
            victim.send_signal(signal.SIGKILL)
            assert victim.wait(timeout=BOUND) == -signal.SIGKILL
            ran_before = len(runs(tmp_path))
            # What the dead node owned, read before its leases expire (LEASE after its last
            # renewal, at most LEASE/3 before the kill): exactly what may run again. KEYS, not
            # SCAN: one round trip, where a slow SCAN could outlast the leases.
            owned: set[str] = set()
            for owned_key in client.keys(f"{keys}owned:*:{victim.pid}:*"):
                owned |= set(client.smembers(owned_key))
            poll(lambda: http.get("/api/v1/stats").json()["successful"] == TASKS, "all done")
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(timeout=BOUND) == 0
    finally:
        stop(survivor)
        stop(victim)

    assert ran_before < TASKS, "the kill came after all the work: nothing tested"
    with client.pipeline(transaction=False) as pipe:
        for task_id in accepted:
            pipe.hget(f"{keys}task:{task_id}", "state")
        states = dict(zip(accepted, pipe.execute(), strict=True))
    client.close()
    assert set(states.values()) == {"completed"}  # none lost
    executions = Counter(task_id for _, task_id in runs(tmp_path))
    assert set(executions) == set(accepted)  # every one ran, nothing invented
    assert max(executions.values()) <= 2
    twice = {task_id for task_id, count in executions.items() if count > 1}
    assert twice <= owned  # only what the dead node owned at the kill ran again
    pids = {pid for pid, _ in runs(tmp_path)}
    assert pids == {survivor.pid, victim.pid}  # both nodes did work
