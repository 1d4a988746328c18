"""Two real `oncue serve` processes on one PostgreSQL schema; one is SIGKILLed halfway.

Every accepted task must complete; the dead node's claimed tasks come back when their lease
expires and run on the survivor. A task runs twice only if the dead node had started it, so
the duplicates are bounded by what its workers held. The handler appends its task id to a
file with O_APPEND at the start of every execution: the file is the ground truth of what ran.
"""

from __future__ import annotations

import signal
import textwrap
from collections import Counter
from pathlib import Path

import httpx
from servers import BOUND, Server, poll, recorded_runs, recording_handlers, submit_batches

from oncue.actors.backends.postgres import split_url
from oncue.actors.cores.durations import MAX_BATCH

TASKS = 5000
WORKERS = 4

HANDLERS = recording_handlers(lease=3.0)


def start(directory: Path, store: str) -> Server:
    """`oncue serve` on ``store``, in ``directory``, with the recording handler."""
    return Server(
        *("--handlers", "handlers_two_nodes", "--workers", str(WORKERS)),
        *("--queue-size", str(TASKS), "--log-level", "WARNING"),
        store=store,
        cwd=directory,
        env={"ONCUE_TEST_RUNS": str(directory / "runs")},
    )


def runs(directory: Path) -> list[str]:
    """The task id of every execution, in order."""
    return [task_id for _, task_id in recorded_runs(directory)]


def test_a_node_killed_halfway_loses_nothing_and_reruns_only_what_it_held(
    tmp_path, postgres_store
) -> None:
    import psycopg

    (tmp_path / "handlers_two_nodes.py").write_text(textwrap.dedent(HANDLERS))
    survivor = start(tmp_path, postgres_store)
    doomed = start(tmp_path, postgres_store)
    try:
        with httpx.Client(base_url=survivor.url, timeout=BOUND) as http:
            accepted = submit_batches(http, TASKS)
            poll(lambda: len(runs(tmp_path)) >= TASKS // 2, "half of the tasks to run")
            assert doomed.stop(signal.SIGKILL) == -signal.SIGKILL
            ran_before = len(runs(tmp_path))
            assert ran_before < TASKS, "the kill came after all the work: nothing tested"
            done = lambda: http.get("/api/v1/stats").json()["successful"] == TASKS  # noqa: E731
            poll(done, "all done", bound=4 * BOUND)  # one node left, on a loaded machine
        assert survivor.stop(signal.SIGTERM) == 0
    finally:
        survivor.close()
        doomed.close()

    url, schema = split_url(postgres_store)
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
