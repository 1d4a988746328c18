"""One awaited submit() per task on SQLite, as ``bench durable``'s oncue-sqlite, in one process.

    python -m bench.serial_submit [TASKS] [ROUNDS] [--actors]

A fresh SQLite file, 8 workers, 300 tasks to warm up, then ROUNDS rounds of TASKS tasks
(default 2,000 x 3), each submitted and awaited in turn, then every result read back and
checked. Prints one JSON line: per round the wall time, the process's CPU time (both threads)
and the context switches of all its threads, each per task. ``--actors`` adds, per round, the
event loop's thread's CPU a task by actor (a trio Instrument: the figures include its own
cost), the commits a task, and the loop's thread's CPU in all.

Wall time on a shared machine moves with the load; compare checkouts by running this from
each in turn, interleaved, and by CPU time (docs/performance.md, "SQLite, one serial awaited
submit").
"""

from __future__ import annotations

import collections
import json
import os
import sys
import tempfile
import time
from typing import Any

import trio

from oncue.actors import Registry, TaskContext, open_engine
from oncue.actors.backends.sqlite import SqliteBackend

registry = Registry()
commits = [0]


@registry.task("bench.double", timeout=60)
async def double(ctx: TaskContext, x: int) -> list[Any]:
    return [2 * x, time.time()]


def switches() -> int:
    """Context switches (voluntary and not) of every thread of this process so far."""
    total = 0
    for thread in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{thread}/status") as status:
                total += sum(int(line.split()[1]) for line in status if "ctxt_switches" in line)
        except FileNotFoundError:  # the thread ended meanwhile
            pass
    return total


class Actors(trio.abc.Instrument):
    """The event loop's thread's CPU time and steps, by actor (the supervisor's slot name)."""

    def __init__(self) -> None:
        self.cpu: collections.Counter[str] = collections.Counter()
        self.steps: collections.Counter[str] = collections.Counter()
        self._began = time.thread_time()  # added inside a step: that step counts from here

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._began = time.thread_time()

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        name = task.name
        slot = task.coro.cr_frame.f_locals.get("slot") if task.coro.cr_frame else None
        if slot is not None:
            name = "workers" if slot.spec.name.startswith("worker") else slot.spec.name
        self.cpu[name] += time.thread_time() - self._began
        self.steps[name] += 1


async def main(count: int, rounds: int, actors: bool) -> list[dict[str, Any]]:
    out = []
    with tempfile.TemporaryDirectory() as scratch:
        store = f"sqlite:///{scratch}/oncue.db"
        options = {"workers": 8, "queue_size": count * rounds + 1000, "store": store}
        async with open_engine(registry=registry, **options) as engine:
            for x in range(300):
                await engine.submit("bench.double", x)
            await engine.wait_idle()
            for _ in range(rounds):
                instrument = Actors()
                if actors:
                    trio.lowlevel.add_instrument(instrument)
                commits[0], switched = 0, switches()
                cpu, thread, began = time.process_time(), time.thread_time(), time.perf_counter()
                tasks = [await engine.submit("bench.double", x) for x in range(count)]
                done = await engine.wait_many([task.id for task in tasks])
                wall = time.perf_counter() - began
                if actors:
                    trio.lowlevel.remove_instrument(instrument)
                assert [task.result[0] for task in done] == [2 * x for x in range(count)]
                one = {
                    "wall_us": wall / count * 1e6,
                    "cpu_us": (time.process_time() - cpu) / count * 1e6,
                    "switches": (switches() - switched) / count,
                }
                if actors:
                    one["loop_thread_cpu_us"] = (time.thread_time() - thread) / count * 1e6
                    one["commits"] = commits[0] / count
                    one["actors_us"] = {k: v / count * 1e6 for k, v in instrument.cpu.items()}
                    one["steps"] = {k: v / count for k, v in instrument.steps.items()}
                out.append(one)
    return out


def count_commits() -> None:
    """Count the backend's commits (wrapping the class's method, for --actors)."""
    commit = SqliteBackend.commit

    async def counted(self: SqliteBackend, *args: Any) -> Any:
        commits[0] += 1
        return await commit(self, *args)

    SqliteBackend.commit = counted  # type: ignore[method-assign]


if __name__ == "__main__":
    numbers = [int(arg) for arg in sys.argv[1:] if arg.isdigit()]
    with_actors = "--actors" in sys.argv
    if with_actors:
        count_commits()
    tasks, rounds = (numbers + [2000, 3][len(numbers) :])[:2]
    print(json.dumps(trio.run(main, tasks, rounds, with_actors)))
