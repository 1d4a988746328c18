"""A drained process ends within --grace plus a small bound, whatever its handlers do
(issue 17 item 5): a task that shields itself from cancellation is abandoned, not waited for,
and runs again at the next start."""

from __future__ import annotations

import signal

import httpx
from servers import BOUND, poll, running_server

from oncue.http.process import EXIT_ABANDONED

STUBBORN = """
import os, pathlib

import trio

from oncue.actors import Registry

registry = Registry()
started = pathlib.Path(os.environ["ONCUE_TEST_STARTED"])


@registry.task("stubborn", timeout=3600)
async def stubborn(ctx, payload):
    started.touch()
    with trio.CancelScope(shield=True):  # deaf to the shutdown
        await trio.sleep(3600)
"""


def test_a_task_shielded_from_cancellation_cannot_hold_the_exit(tmp_path) -> None:
    (tmp_path / "stubborn_handlers.py").write_text(STUBBORN)
    started = tmp_path / "started"
    options = {
        "store": f"sqlite:///{tmp_path}/tasks.db",
        "cwd": tmp_path,
        "env": {"ONCUE_TEST_STARTED": str(started)},
    }
    args = ("--handlers", "stubborn_handlers", "--grace", "0.2")
    with running_server(*args, **options) as server:
        with httpx.Client(base_url=server.url, timeout=BOUND) as http:
            task_id = http.post("/api/v1/tasks", json={"type": "stubborn"}).json()["id"]
        poll(started.exists, "the stubborn task to start")
        assert server.stop(signal.SIGTERM) == EXIT_ABANDONED  # within BOUND, not an hour
    assert "server.abandoned" in server.log
    started.unlink()
    with running_server(*args, **options) as restarted:  # it was not lost: it runs again
        poll(started.exists, "the stubborn task to run again")
        with httpx.Client(base_url=restarted.url, timeout=BOUND) as http:
            assert http.get(f"/api/v1/tasks/{task_id}").json()["attempts"] == 2


async def test_a_drain_inside_a_program_of_its_own_never_ends_that_process() -> None:
    """Only `oncue serve` / `oncue worker` (which own the process) arm the exit deadline; a
    test or an embedding that drains an engine keeps its process (the whole suite died once)."""
    from oncue.actors import open_engine
    from oncue.http import process

    async with open_engine() as engine:
        await process.drain(engine, 0.0, "worker")
    assert process._exit_deadline is None
    with process.bounded_exit():
        async with open_engine() as engine:
            await process.drain(engine, 0.0, "worker")
        assert process._exit_deadline is not None  # armed: this process would end if stuck
    assert process._exit_deadline is None  # and disarmed once the command returns
