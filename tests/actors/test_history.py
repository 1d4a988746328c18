"""A task's history on every store: each state it entered, when, on which worker, and why
each failed attempt failed; and what changed since a moment (the event stream's replay)."""

from __future__ import annotations

import time

import pytest

from oncue.actors import Registry, TaskContext, TaskState, open_engine


@pytest.fixture
def registry(registry: Registry) -> Registry:
    @registry.task("fails_once", max_retries=1, retry_base=0.001, retry_cap=0.001)
    async def fails_once(ctx: TaskContext, payload: object) -> int:
        if ctx.attempt == 1:
            raise RuntimeError("the first attempt fails")
        return ctx.attempt

    return registry


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis"])
def store(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tasks.db'}"
    if request.param in ("postgres", "redis"):
        return request.getfixturevalue(f"{request.param}_store")
    return "memory://"


async def test_history_names_the_worker_and_each_failed_attempts_error(
    store: str, registry: Registry
) -> None:
    async with open_engine(registry=registry, store=store, workers=1) as engine:
        task = await engine.submit("fatal", "nope", max_retries=0)
        await engine.wait(task.id)
        flaky = await engine.submit("fails_once", None)
        await engine.wait(flaky.id)
        failed, retried = await engine.get(task.id), await engine.get(flaky.id)
    states = [step.state for step in failed.history]
    assert states == [TaskState.PENDING, TaskState.RUNNING, TaskState.FAILED]
    assert failed.history[1].worker is not None
    assert failed.history[1].worker.endswith("worker-1")
    assert failed.history[2].error == f"Fatal: {failed.error.message}"  # type: ignore[union-attr]
    retrying = [step for step in retried.history if step.state is TaskState.RETRYING]
    assert retrying
    assert all(step.error for step in retrying)
    assert retried.history[-1].state is TaskState.COMPLETED


async def test_changed_since_finds_the_unfinished_and_the_recently_finished(
    store: str, registry: Registry
) -> None:
    async with open_engine(registry=registry, store=store, workers=1) as engine:
        old = await engine.submit("record", "old")
        await engine.wait(old.id)
        moment = time.time()
        await engine.pause()
        queued = await engine.submit("record", "queued")
        await engine.resume()
        await engine.wait(queued.id)
        also = await engine.submit("record", "also")
        await engine.wait(also.id)
        await engine.pause()
        waiting = await engine.submit("record", "waiting")
        found, complete = await engine.changed_since(moment)
        few, whole = await engine.changed_since(moment, limit=1)
        await engine.resume()
    assert complete
    assert {task.id for task in found} == {queued.id, also.id, waiting.id}
    assert not whole  # two finished since: more than the limit of one
    assert {task.id for task in few} == {queued.id, waiting.id}  # the oldest finish first
