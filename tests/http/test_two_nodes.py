"""Two real `oncue serve` processes on one PostgreSQL schema; one is SIGKILLed halfway.

Every accepted task must complete; the dead node's claimed tasks come back when their lease
expires and run on the survivor. A task runs twice only if the dead node had started it, so
the duplicates are bounded by what its workers held. The handler appends its task id to a
file with O_APPEND at the start of every execution: the file is the ground truth of what ran.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from oncue.actors.scheduler import MAX_BATCH

ONCUE = Path(sys.executable).with_name("oncue")
BOUND = 60.0  # seconds: a safety bound on every wait below, never a timing assertion
TASKS = 5000
WORKERS = 4

HANDLERS = """
import os

import trio

from oncue.actors import Registry

registry = Registry()
runs = os.open(os.environ["ONCUE_TEST_RUNS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)


@registry.task("record", lease=3.0)
async def record(ctx, payload):
    os.write(runs, f"{ctx.task_id}\\n".encode())  # one write, appended atomically
    await trio.sleep(0.002)
    return payload
"""


def start(directory: Path, store: str) -> tuple[subprocess.Popen[str], str]:
    """`oncue serve` on ``store``, in ``directory``; returns it and its base URL."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "ONCUE_TEST_RUNS": str(directory / "runs")}
    for name in ("ONCUE_STORE", "DATABASE_URL", "REDIS_URL", "ONCUE_API_TOKENS"):
        env.pop(name, None)
    command = [str(ONCUE), "serve", "--port", "0", "--store", store]
    command += ["--handlers", "handlers_two_nodes", "--workers", str(WORKERS)]
    command += ["--queue-size", str(TASKS), "--log-level", "WARNING"]
    process = subprocess.Popen(
        command,
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    first = process.stdout.readline()
    match = re.search(r"listening on (http://\S+)", first)
    assert match, f"no banner: {first!r}"
    return process, match.group(1)


def stop(process: subprocess.Popen[str]) -> None:
    process.kill()
    process.wait()
    if process.stdout is not None:
        process.stdout.close()


def poll(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def runs(directory: Path) -> list[str]:
    path = directory / "runs"
    return path.read_text().split() if path.exists() else []


def test_a_node_killed_halfway_loses_nothing_and_reruns_only_what_it_held(
    tmp_path, postgres_store
) -> None:
    import psycopg

    (tmp_path / "handlers_two_nodes.py").write_text(textwrap.dedent(HANDLERS))
    survivor, url = start(tmp_path, postgres_store)
    doomed, _ = start(tmp_path, postgres_store)
    try:
        with httpx.Client(base_url=url, timeout=BOUND) as http:
            accepted: list[str] = []
            for first in range(0, TASKS, 1000):
                batch = [{"type": "record", "payload": n} for n in range(first, first + 1000)]
                response = http.post("/api/v1/tasks/batch", json={"tasks": batch})
                assert response.status_code == 201, response.text
                accepted += [task["id"] for task in response.json()["tasks"]]
            poll(lambda: len(runs(tmp_path)) >= TASKS // 2, "half of the tasks to run")
            doomed.send_signal(signal.SIGKILL)
            assert doomed.wait(timeout=BOUND) == -signal.SIGKILL
            ran_before = len(runs(tmp_path))
            assert ran_before < TASKS, "the kill came after all the work: nothing tested"
            poll(lambda: http.get("/api/v1/stats").json()["successful"] == TASKS, "all done")
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(timeout=BOUND) == 0
    finally:
        stop(survivor)
        stop(doomed)

    url, schema = postgres_store.split("?schema=")
    with psycopg.connect(url) as db:
        rows = db.execute(f"SELECT id, state, worker FROM {schema}.tasks").fetchall()  # type: ignore[arg-type]
    assert {task_id: state for task_id, state, _ in rows} == dict.fromkeys(accepted, "completed")
    nodes = Counter(worker.split("/")[0] for _, _, worker in rows)
    assert len(nodes) == 2, nodes  # both nodes completed tasks before the kill
    executions = Counter(runs(tmp_path))
    assert set(executions) == set(accepted)  # every one ran
    twice = [task_id for task_id, count in executions.items() if count > 1]
    assert max(executions.values()) <= 2
    assert len(twice) <= WORKERS * MAX_BATCH  # only what the dead node's workers had started
