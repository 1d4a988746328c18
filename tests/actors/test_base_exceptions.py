"""Whatever a handler raises fails that task, retryably and named by its type; the worker and
the engine go on (issue 12 item 8, issue 17 item 10). A Ctrl-C sent to the process still stops
it the trio way."""

from __future__ import annotations

import os
import signal
from typing import Any

import pytest
import trio

from oncue.actors import Registry, TaskContext, TaskState, open_engine
from oncue.actors.engine.failures import raised_by_task_code


class Custom(BaseException):
    pass


RAISED = {
    "system_exit": SystemExit(3),
    "generator_exit": GeneratorExit(),
    "keyboard_interrupt": KeyboardInterrupt(),  # raised by the code itself, not by a SIGINT
    "custom": Custom("a BaseException of its own"),
}


def raising_registry() -> Registry:
    registry = Registry()
    for name, error in RAISED.items():

        @registry.task(f"loop_{name}", max_retries=1, retry_base=0.001, retry_cap=0.001)
        async def in_loop(ctx: TaskContext, payload: Any, error: BaseException = error) -> Any:
            raise error

        @registry.task(f"thread_{name}", max_retries=1, retry_base=0.001, retry_cap=0.001)
        def in_thread(ctx: TaskContext, payload: Any, error: BaseException = error) -> Any:
            raise error

    @registry.task("double_it")
    async def double_it(ctx: TaskContext, payload: Any) -> Any:
        return payload * 2

    return registry


@pytest.mark.parametrize("where", ["loop", "thread"])
@pytest.mark.parametrize("name", list(RAISED))
async def test_a_base_exception_fails_the_task_and_the_engine_goes_on(
    where: str, name: str
) -> None:
    # No mock clock: it would jump past the timeout while a thread runs (retries wait 1 ms).
    async with open_engine(registry=raising_registry(), workers=1) as engine:
        task = await engine.submit(f"{where}_{name}", None)
        failed = await engine.wait(task.id)
        after = await engine.submit("double_it", 21)
        assert (await engine.wait(after.id)).result == 42
        workers = await engine.workers()
    assert failed.state is TaskState.FAILED
    assert failed.attempts == 2  # retryable like any error: max_retries=1
    assert failed.error is not None
    assert failed.error.type == type(RAISED[name]).__name__
    assert [worker.restarts for worker in workers] == [0]


async def test_a_sigint_to_the_process_is_not_taken_for_the_task_s_failure() -> None:
    delivered: list[KeyboardInterrupt] = []

    async def busy_task_code() -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            while True:  # unprotected task code: trio raises KeyboardInterrupt in it
                sum(range(100))
        except KeyboardInterrupt as error:
            delivered.append(error)

    await busy_task_code()
    assert not raised_by_task_code(delivered[0])  # it goes on and stops the process
    with pytest.raises(KeyboardInterrupt) as raised:
        raise KeyboardInterrupt  # what task code raises itself: the task's failure
    assert raised_by_task_code(raised.value)
    assert not raised_by_task_code(trio.Cancelled._create())
    group = BaseExceptionGroup("both", [SystemExit(1), trio.Cancelled._create()])
    assert not raised_by_task_code(group)  # the cancellation in it must go on
    assert raised_by_task_code(BaseExceptionGroup("task code's", [SystemExit(1), Custom()]))


class NodeDied(Exception):
    pass


async def test_a_task_whose_node_dies_each_time_ends_failed_as_a_poison_task(
    autojump_clock,
) -> None:
    from oncue.actors.backends.memory import MemoryBackend

    registry = Registry()
    running = trio.Event()

    @registry.task("poison", max_retries=1)
    async def poison(ctx: TaskContext, payload: Any) -> Any:
        running.set()
        await trio.sleep_forever()  # the node dies while it runs

    @registry.task("double_it")
    async def double_it(ctx: TaskContext, payload: Any) -> Any:
        return payload * 2

    backend = MemoryBackend()  # the same object reopened plays a restarted process
    task_id = None
    # max_retries 1: two attempts, and one more for a node lost during the last, each ended
    # by its node dying
    for _ in range(3):
        running = trio.Event()
        try:
            async with open_engine(registry=registry, store=backend) as engine:
                if task_id is None:
                    task_id = (await engine.submit("poison", None)).id
                await running.wait()
                await trio.sleep(1)  # its start is committed (the scheduler sends it in ms)
                assert (await engine.get(task_id)).state is TaskState.RUNNING
                raise NodeDied
        except NodeDied:
            pass
    running = trio.Event()
    async with open_engine(registry=registry, store=backend) as engine:  # starts, and goes on
        after = await engine.submit("double_it", 21)
        assert (await engine.wait(after.id)).result == 42
        dead = await engine.get(task_id)
    assert dead.state is TaskState.FAILED
    assert dead.attempts == 3
    assert dead.error is not None
    assert dead.error.type == "NodeLost"
    assert not running.is_set()  # not run a fourth time
