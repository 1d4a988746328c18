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

import httpx
import pytest
from live_servers import REDIS, RUN, drop_redis_prefix, redis_or_skip, with_option
from servers import BOUND, poll, recorded_runs, recording_handlers, submit_batches
from test_two_nodes import start  # the PostgreSQL test's: same processes

TASKS = 5000
WORKERS = 4
LEASE = 3.0  # the handler's lease: the dead node's tasks come back this long after the kill

HANDLERS = recording_handlers(lease=LEASE)


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
    store = with_option(REDIS, "prefix", prefix)
    keys = f"{{{prefix}}}:"
    survivor = start(tmp_path, store)
    victim = start(tmp_path, store)
    client = redis.Redis.from_url(REDIS, decode_responses=True)
    try:
        with httpx.Client(base_url=survivor.url, timeout=BOUND) as http:
            accepted = submit_batches(http, TASKS)
            poll(lambda: len(recorded_runs(tmp_path)) >= TASKS // 2, "half of the tasks to run")
            assert victim.stop(signal.SIGKILL) == -signal.SIGKILL
            ran_before = len(recorded_runs(tmp_path))
            # What the dead node owned, read before its leases expire (LEASE after its last
            # renewal, at most LEASE/3 before the kill): exactly what may run again. KEYS, not
            # SCAN: one round trip, where a slow SCAN could outlast the leases.
            owned: set[str] = set()
            for owned_key in client.keys(f"{keys}owned:*:{victim.process.pid}:*"):
                owned |= set(client.smembers(owned_key))
            done = lambda: http.get("/api/v1/stats").json()["successful"] == TASKS  # noqa: E731
            poll(done, "all done", bound=4 * BOUND)  # one node left, on a loaded machine
        assert survivor.stop(signal.SIGTERM) == 0
    finally:
        survivor.close()
        victim.close()

    assert ran_before < TASKS, "the kill came after all the work: nothing tested"
    with client.pipeline(transaction=False) as pipe:
        for task_id in accepted:
            pipe.hget(f"{keys}task:{task_id}", "state")
        states = dict(zip(accepted, pipe.execute(), strict=True))
    client.close()
    assert set(states.values()) == {"completed"}  # none lost
    executions = Counter(task_id for _, task_id in recorded_runs(tmp_path))
    assert set(executions) == set(accepted)  # every one ran, nothing invented
    assert max(executions.values()) <= 2
    twice = {task_id for task_id, count in executions.items() if count > 1}
    assert twice <= owned  # only what the dead node owned at the kill ran again
    pids = {pid for pid, _ in recorded_runs(tmp_path)}
    assert pids == {survivor.process.pid, victim.process.pid}  # both nodes did work
