"""One conformance suite, run against every backend through the engine."""

from __future__ import annotations

import pytest

from oncue.actors import Submission, TaskState, open_backend, open_engine
from oncue.actors.backends.memory import MemoryBackend
from oncue.actors.backends.sqlite import SqliteBackend


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    """A backend object; the same object reopened plays a restarted process."""
    if request.param == "memory":
        return MemoryBackend()
    return SqliteBackend(tmp_path / "oncue.db")


async def test_tasks_and_their_history_round_trip(store, registry) -> None:
    async with open_engine(registry=registry, store=store, workers=2) as engine:
        ok = await engine.submit("double", 21, key="k-1", priority="high")
        failed = await engine.submit("fail", {"message": "nope"})
        await engine.wait_idle()
        done = await engine.get(ok.id)
        by_key = await engine.submit("double", 1, key="k-1")
        dead = await engine.get(failed.id)
    assert done.result == 42
    assert done.priority == 2
    assert by_key.id == ok.id
    assert [step.state for step in done.history] == ["pending", "running", "completed"]
    assert dead.state is TaskState.FAILED
    assert dead.error is not None
    assert dead.error.message == "nope"


async def test_list_cancel_delete_retry_and_stats(store, registry) -> None:
    async with open_engine(registry=registry, store=store, workers=1) as engine:
        await engine.pause()
        tasks = await engine.submit_many([Submission("echo", n) for n in range(6)])
        await engine.cancel(tasks[0].id)
        await engine.resume()
        await engine.wait_idle()
        await engine.delete(tasks[1].id)
        page = await engine.list(limit=3)
        rest = await engine.list(limit=3, cursor=page.next_cursor)
        cancelled = await engine.list(state="cancelled")
        stats = await engine.stats()
    assert [task.payload for task in page.tasks] == [5, 4, 3]
    assert [task.payload for task in rest.tasks] == [2, 0]
    assert [task.id for task in cancelled.tasks] == [tasks[0].id]
    assert stats.successful == 4
    assert stats.cancelled == 1


async def test_finished_and_unfinished_tasks_survive_a_restart(store, registry) -> None:
    async with open_engine(registry=registry, store=store, workers=1) as engine:
        finished = await engine.submit("double", 5)
        await engine.wait(finished.id)
        await engine.pause()
        waiting = await engine.submit("double", 7)
        later = await engine.submit("double", 9, delay=3600)
    async with open_engine(registry=registry, store=store, workers=1) as engine:
        assert (await engine.get(finished.id)).result == 10
        assert (await engine.wait(waiting.id, timeout=10)).result == 14
        assert (await engine.get(later.id)).state is TaskState.PENDING
        assert (await engine.submit("echo", None)).number == 4
        stats = await engine.stats()
    assert stats.successful == 2


async def test_a_task_running_at_a_crash_runs_again_on_restart(store, registry) -> None:
    engine_context = open_engine(registry=registry, store=store, workers=1, grace=0)
    async with engine_context as engine, engine.events() as events:
        task = await engine.submit("gate", "x")
        async for event in events:
            if event.state is TaskState.RUNNING:
                break
        # Leaving with grace=0 interrupts it: what a killed process leaves behind, a task
        # that was running (the interrupt records it pending, with the attempt counted).
    registry.gate.set()
    async with open_engine(registry=registry, store=store, workers=1) as engine:
        done = await engine.wait(task.id, timeout=10)
    assert done.result == "x"
    assert done.attempts == 2


def test_store_urls_name_the_accepted_forms(tmp_path) -> None:
    assert isinstance(open_backend("memory://"), MemoryBackend)
    sqlite = open_backend(f"sqlite:///{tmp_path}/a.db?synchronous=full")
    assert isinstance(sqlite, SqliteBackend)
    assert sqlite.path == f"{tmp_path}/a.db"
    assert open_backend("sqlite:///oncue.db").path == "oncue.db"  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match=r"accepted forms: memory://, sqlite:///"):
        open_backend("mysql://localhost/x")
    with pytest.raises(ValueError, match="synchronous"):
        open_backend("sqlite:///a.db?synchronous=maybe")


async def test_durable_stores_refuse_payloads_json_cannot_hold(tmp_path, registry) -> None:
    async with open_engine(registry=registry, store=f"sqlite:///{tmp_path}/x.db") as engine:
        with pytest.raises(ValueError, match="payload must be a JSON value"):
            await engine.submit("echo", {1, 2})


async def test_a_result_json_cannot_hold_is_kept_as_its_repr(tmp_path, registry) -> None:
    @registry.task("odd")
    async def odd(ctx, payload):
        return {1, 2}

    path = f"sqlite:///{tmp_path}/x.db"
    async with open_engine(registry=registry, store=path) as engine:
        task = await engine.submit("odd")
        await engine.wait(task.id)
    async with open_engine(registry=registry, store=path) as engine:
        assert (await engine.get(task.id)).result == {"__repr__": "{1, 2}"}
