"""Tasks survive kill -9 on SQLite: a child process submits and is killed mid-work; we restart.

The child opens an engine on a SQLite file, submits 200 tasks, and is killed with SIGKILL once a
few have completed. This process then opens an engine on the same file: the tasks the child had
running come back as pending (at-least-once), the queued ones are still queued, and all 200
complete.

Run: python examples/durable_restart.py
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import trio

from oncue.actors import Registry, Submission, TaskContext, TaskState, open_engine

TASKS = 200
registry = Registry()


@registry.task("square")
async def square(ctx: TaskContext, payload: int) -> int:
    """Slow enough that the kill lands while most tasks are still queued."""
    await trio.sleep(0.01)
    return payload * payload


async def child(store: str) -> None:
    """Submit, say so once a few are done, then keep working until killed."""
    async with open_engine(registry=registry, workers=2, queue_size=1000, store=store) as engine:
        async with engine.events() as events:
            await engine.submit_many([Submission("square", n) for n in range(TASKS)])
            print(f"child: {TASKS} tasks accepted (committed)", flush=True)
            completed = 0
            async for event in events:
                completed += event.state is TaskState.COMPLETED
                if completed == 20:
                    print("child: 20 completed, kill me", flush=True)
        await trio.sleep_forever()


def run_and_kill_child(store: str) -> None:
    command = [sys.executable, __file__, "--child", store]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(line, end="")
            if "kill me" in line:
                break
        process.send_signal(signal.SIGKILL)
        print(f"parent: child killed (exit {process.wait()})")


async def restart(store: str) -> None:
    async with open_engine(registry=registry, workers=4, store=store) as engine:
        before = await engine.stats()
        print(f"parent: restarted: {before.successful} completed, {before.queue_length} queued")
        await engine.wait_idle()
        stats = await engine.stats()
        page = await engine.list(state="completed", limit=TASKS)
    print(f"parent: all done: {stats.successful} completed, {stats.failed} failed")
    assert stats.successful == TASKS, stats
    assert sorted(task.result for task in page.tasks) == sorted(n * n for n in range(TASKS))


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        trio.run(child, sys.argv[2])
        return
    with tempfile.TemporaryDirectory() as directory:
        store = f"sqlite:///{Path(directory) / 'tasks.db'}"
        run_and_kill_child(store)
        trio.run(restart, store)


if __name__ == "__main__":
    main()
