"""The store's recently finished tasks (recent.py) and the memory store's bound on finished
tasks (backends/memory.py)."""

from __future__ import annotations

import pytest

from oncue.actors import Submission, TaskNotFound, TaskState, open_backend, open_engine
from oncue.actors.backends.memory import MemoryBackend
from oncue.actors.cores.recent import RECORD_BYTES, RecentResults, approximate_size
from oncue.actors.cores.record import TaskRecord


def finished(task_id: str, at: float = 1.0, result: object = None) -> TaskRecord:
    record = TaskRecord(task_id, 1, "t", None, 0, TaskState.COMPLETED, 1, 0, 1.0, 0.0)
    record.finished_at = at
    record.result = result
    return record


def test_the_oldest_go_first_beyond_the_count() -> None:
    recent = RecentResults(max_count=2)
    for task_id in "abc":
        recent.add(finished(task_id))
    assert [recent.get(task_id) is not None for task_id in "abc"] == [False, True, True]
    recent.add(finished("b"))  # finished again: the newest now
    recent.add(finished("d"))
    assert recent.get("c") is None
    assert recent.get("b") is not None
    assert len(recent) == 2


def test_the_oldest_go_first_beyond_the_bytes() -> None:
    big = "x" * 1000
    one = RECORD_BYTES + approximate_size(None) + approximate_size(big)
    recent = RecentResults(max_count=100, max_bytes=2 * one)
    for task_id in "abc":
        recent.add(finished(task_id, result=big))
    assert recent.get("a") is None
    assert len(recent) == 2
    assert recent.bytes == 2 * one
    recent.add(finished("huge", result="y" * 10 * one))  # bigger than the bound: not kept
    assert recent.get("huge") is None
    assert len(recent) == 2


def test_forgotten_on_discard_and_purge() -> None:
    recent = RecentResults()
    recent.add(finished("old", at=1.0))
    recent.add(finished("new", at=5.0))
    recent.discard("new")
    recent.discard("never")
    assert recent.get("new") is None
    recent.add(finished("new", at=5.0))
    recent.drop_finished_before(3.0)
    assert (recent.get("old"), recent.get("new") is not None) == (None, True)
    assert RecentResults(max_count=0).add(finished("a")) is None
    assert len(RecentResults(max_count=0)) == 0


def test_sizes_count_what_values_hold_within_a_budget() -> None:
    assert approximate_size("x" * 1000) > 1000
    assert approximate_size({"k": "x" * 1000}) > 1000
    assert approximate_size([["x" * 100] * 10] * 10) > 10_000
    huge = list(range(1_000_000))  # estimated from the first items, not all of them
    assert 20_000_000 < approximate_size(huge) < 50_000_000


async def test_the_memory_store_keeps_the_last_finished_tasks_only(registry) -> None:
    store = MemoryBackend(max_finished=5)
    async with open_engine(registry=registry, workers=1, store=store) as engine:
        tasks = await engine.submit_many([Submission("double", n) for n in range(20)])
        await engine.wait_idle()
        stats = await engine.stats()
        page = await engine.list(state="completed")
        with pytest.raises(TaskNotFound):
            await engine.get(tasks[0].id)
        assert (await engine.get(tasks[-1].id)).result == 38
        await engine.delete(tasks[-1].id)
        more = await engine.submit("double", 100)
        await engine.wait(more.id)
        assert len((await engine.list(state="completed")).tasks) == 5
    assert stats.successful == 5
    assert len(page.tasks) == 5


def test_the_memory_store_url_sets_the_bound() -> None:
    backend = open_backend("memory://?max_finished=7")
    assert isinstance(backend, MemoryBackend)
    assert backend.max_finished == 7
    with pytest.raises(ValueError, match="max_finished must be an int >= 0, got 'many'"):
        open_backend("memory://?max_finished=many")
    with pytest.raises(ValueError, match="unknown memory store option"):
        open_backend("memory://?keep=3")
    with pytest.raises(ValueError, match="max_finished must be an int >= 0"):
        MemoryBackend(max_finished=-1)


async def test_the_memory_store_gives_back_its_tables_after_a_big_drop() -> None:
    import sys

    backend = MemoryBackend(max_finished=10)
    records = [finished(f"t{n}", at=float(n)) for n in range(5000)]
    for number, record in enumerate(records, start=1):
        record.number = number
    await backend.commit(records, ())
    full = sys.getsizeof(backend._by_id)
    dropped = backend.trim_finished()
    assert dropped == {("t", TaskState.COMPLETED): 4990}
    assert len(backend._by_id) == 10
    assert sys.getsizeof(backend._by_id) < full / 50
    assert [record.id for record in await backend.get_many(["t0", "t4999"])] == ["t4999"]
