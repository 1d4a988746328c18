"""One conformance suite, run against every backend through the engine."""

from __future__ import annotations

import itertools
import json
import sqlite3

import pytest
import trio
import trio.testing
from live_servers import (
    POSTGRES,
    REDIS,
    RUN,
    drop_redis_prefix,
    postgres_or_skip,
    redis_or_skip,
    with_option,
)

from oncue.actors import (
    DatabaseInUse,
    Submission,
    TaskNotFound,
    TaskState,
    open_backend,
    open_engine,
)
from oncue.actors.backends import is_shared
from oncue.actors.backends.memory import MemoryBackend
from oncue.actors.backends.rows import dump_history, dumps, load_history
from oncue.actors.backends.sqlite import SqliteBackend
from oncue.actors.backends.sqlite_sql import COUNTS, FINISHED_VALUES, PURGE, migrate, query_sql
from oncue.actors.cores import recording
from oncue.actors.cores.record import TaskRecord
from oncue.actors.task import Transition


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis"])
def store(request, tmp_path):
    """A backend object; the same object reopened plays a restarted process."""
    if request.param == "memory":
        yield MemoryBackend()
    elif request.param == "sqlite":
        yield SqliteBackend(tmp_path / "oncue.db")
    elif request.param == "redis":
        redis_or_skip()
        prefix = f"oncue_test_{RUN}_{next(SCHEMAS)}"
        yield open_backend(with_option(REDIS, "prefix", prefix))
        drop_redis_prefix(prefix)
    else:
        postgres_or_skip()
        schema = f"oncue_test_{RUN}_{next(SCHEMAS)}"
        yield open_backend(with_option(POSTGRES, "schema", schema))
        import psycopg

        with psycopg.connect(POSTGRES, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")  # type: ignore[arg-type]


SCHEMAS = itertools.count()


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


async def test_many_tasks_are_read_and_waited_for_at_once(store, registry) -> None:
    """Reading back what the store no longer holds in memory: one get_many of the backend."""
    async with open_engine(registry=registry, store=store, workers=2, recent_results=0) as engine:
        tasks = await engine.submit_many([Submission("double", n) for n in range(600)])
        ids = [task.id for task in tasks]
        done = await engine.wait_many(ids)
        assert [task.result for task in done] == [2 * n for n in range(600)]
        again = await engine.get_many([*reversed(ids), ids[0]])
        assert [task.result for task in again] == [*(2 * n for n in reversed(range(600))), 0]
        with pytest.raises(TaskNotFound, match="nosuchtask"):
            await engine.get_many([ids[0], "nosuchtask"])
        seen = [task.id async for task in engine.as_completed(ids[:10])]
        assert sorted(seen) == sorted(ids[:10])


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


async def test_stats_count_the_waiting_tasks_by_priority_across_a_restart(store, registry) -> None:
    waiting = [("high", 2), ("high", 1), ("low", 1), (7, 1)]
    async with open_engine(registry=registry, store=store, workers=0) as engine:
        for priority, count in waiting:
            batch = [Submission("echo", n, priority=priority) for n in range(count)]
            tasks = await engine.submit_many(batch)
        await engine.cancel(tasks[0].id)  # the one of priority 7
        stats = await engine.stats()
        assert stats.queued_by_priority == {2: 3, 0: 1}
        assert list(stats.queued_by_priority) == [2, 0]  # highest first
    async with open_engine(registry=registry, store=store, workers=0) as engine:
        assert (await engine.stats()).queued_by_priority == {2: 3, 0: 1}
    async with open_engine(registry=registry, store=store, workers=1) as engine:
        await engine.wait_idle()
        stats = await engine.stats()
    assert stats.queued_by_priority == {}
    assert stats.successful == 4


async def test_finished_and_unfinished_tasks_survive_a_restart(store, registry) -> None:
    async with open_engine(registry=registry, store=store, workers=1) as engine:
        finished = await engine.submit("double", 5)
        await engine.wait(finished.id)
        await engine.pause()
        waiting = await engine.submit("double", 7)
        later = await engine.submit("double", 9, delay=3600)
    async with open_engine(registry=registry, store=store, workers=1) as engine:
        assert (await engine.get(finished.id)).result == 10
        with trio.fail_after(10):
            assert (await engine.wait(waiting.id)).result == 14
        assert (await engine.get(later.id)).state is TaskState.PENDING
        number = (await engine.submit("echo", None)).number
        # numbers go on from the last; a shared store's engines take them in blocks
        assert number == 4 if not is_shared(store) else number > later.number
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
        with trio.fail_after(10):
            done = await engine.wait(task.id)
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


def record(number: int, finished_at: float | None, state: TaskState, type: str = "t") -> TaskRecord:
    return TaskRecord(
        id=f"task-{number}",
        number=number,
        type=type,
        payload=None,
        priority=1,
        state=state,
        attempts=1,
        max_retries=0,
        timeout=1.0,
        created_at=0.0,
        finished_at=finished_at,
    )


async def test_purge_deletes_the_oldest_finished_tasks_first_a_batch_at_a_time(store) -> None:
    await store.open()
    await store.commit(
        [
            record(1, 300.0, TaskState.COMPLETED),
            record(2, 100.0, TaskState.FAILED, type="u"),
            record(3, 200.0, TaskState.CANCELLED),
            record(4, None, TaskState.PENDING),
            record(5, 400.0, TaskState.COMPLETED),
        ],
        [],
    )
    assert await store.purge(250.0, 1) == {("u", TaskState.FAILED): 1}
    assert await store.purge(250.0, 10) == {("t", TaskState.CANCELLED): 1}
    assert await store.purge(250.0, 10) == {}
    assert [task.number for task in await store.query(None, None, 10, None)] == [5, 4, 1]
    assert await store.counts() == {("t", TaskState.COMPLETED): 2, ("t", TaskState.PENDING): 1}
    await store.close()


async def test_finished_tasks_are_purged_once_the_retention_has_passed(
    mock_clock, store, registry
) -> None:
    # The clock moves only when told: an autojump clock would also jump while SQLite's thread
    # works, so how much mock time the tasks took would vary.
    async def after(seconds: float) -> None:
        mock_clock.jump(seconds)
        # The scheduler's purge tick fires, and the store takes the Purge alone (it was idle),
        # so it is done before the store answers the next ask.
        await trio.testing.wait_all_tasks_blocked()

    async with open_engine(registry=registry, store=store, retention=3600) as engine:
        done = await engine.submit_many([Submission("record", n) for n in range(3)])
        later = await engine.submit("record", "later", delay=30 * 86400)
        for task in done:
            await engine.wait(task.id)
        await after(1800)
        assert (await engine.stats()).successful == 3
        await after(3600)
        with pytest.raises(TaskNotFound):
            await engine.get(done[0].id)
        stats = await engine.stats()
        assert (await engine.get(later.id)).state is TaskState.PENDING
    assert stats.total_processed == 0
    assert stats.by_state["pending"] == 1


async def test_a_purge_backlog_goes_in_batches_without_waiting_for_the_next_tick(
    autojump_clock, registry, monkeypatch
) -> None:
    # The store's logic, so the memory backend: SQLite's thread calls would let the autojump
    # clock reach a tick before the tasks are done.
    monkeypatch.setattr(recording, "PURGE_BATCH", 2)
    store = MemoryBackend()
    async with open_engine(registry=registry, store=store, retention=0) as engine:
        await engine.submit_many([Submission("record", n) for n in range(5)])
        await engine.wait_idle()
        await trio.sleep(1.5)  # one tick (every second with retention 0): three transactions
        stats = await engine.stats()
        assert (await engine.list()).tasks == []
    assert stats.total_processed == 0


async def test_retention_must_be_seconds_or_none(registry) -> None:
    with pytest.raises(ValueError, match="retention must be seconds >= 0 or None, got -1"):
        async with open_engine(registry=registry, retention=-1):
            pass


def test_listing_and_purging_read_an_index_in_order_never_a_sort() -> None:
    """What keeps `GET /api/v1/tasks` fast at a million rows: every filter combination is an
    index range read in `number` order that stops at the page's limit."""
    db = sqlite3.connect(":memory:")
    migrate(db)

    def plan(sql: str, args: tuple[object, ...]) -> str:
        return " / ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", args))

    filters = itertools.product([None, TaskState.COMPLETED], [None, "t"], [None, "o"], [None, 9])
    for state, type_, owner, before in filters:
        sql, args = query_sql(state, type_, owner, before)
        found = plan(sql, (*args, 50))
        assert "USING INDEX" in found, found
        assert "TEMP B-TREE" not in found, found
    assert "COVERING INDEX tasks_type_state_number" in plan(COUNTS, ())  # at every start
    both, args = query_sql(TaskState.FAILED, "t", None, 9)
    assert "USING INDEX tasks_type_state_number (type=? AND state=? AND number<?)" in plan(
        both, (*args, 50)
    )  # a rare combination is not found by walking every task of the type
    purge = plan(PURGE, (1.0, *FINISHED_VALUES, 1000))
    assert "USING INDEX tasks_finished_at (finished_at<?)" in purge, purge
    assert "TEMP B-TREE" not in purge, purge
    db.close()


def test_postgres_urls_keep_the_schema_option_for_oncue() -> None:
    pytest.importorskip("psycopg")
    from oncue.actors.backends.postgres import PostgresBackend

    backend = open_backend("postgresql://me@db:5432/jobs?schema=oncue&sslmode=require")
    assert isinstance(backend, PostgresBackend)
    assert (backend.url, backend.schema) == (
        "postgresql://me@db:5432/jobs?sslmode=require",
        "oncue",
    )
    assert open_backend("postgres://db/jobs").schema == "public"  # type: ignore[attr-defined]


async def test_a_sqlite_database_belongs_to_one_engine(tmp_path) -> None:
    first = SqliteBackend(tmp_path / "one.db")
    await first.open()
    try:
        with pytest.raises(DatabaseInUse, match="in use by another oncue process"):
            await SqliteBackend(tmp_path / "one.db").open()
    finally:
        await first.close()
    second = SqliteBackend(tmp_path / "one.db")
    await second.open()  # free again once the first is closed
    await second.close()


async def test_sqlite_writes_each_record_whole_or_its_changes_whatever_the_order(tmp_path) -> None:
    """New records (numbered above every stored one) are inserted, stored ones updated; one
    numbered below the top that is not stored (committed late, or deleted) is still written."""
    backend = SqliteBackend(tmp_path / "x.db")
    await backend.open()
    many = [record(number, None, TaskState.PENDING) for number in range(10, 310)]
    await backend.commit(many, [])  # several statements of a few rows each
    late = record(5, None, TaskState.PENDING)
    await backend.commit([late], [])
    await backend.commit([], [many[0].id])
    for task in [late, *many]:
        task.payload = {"n": task.number}  # a new record's payload goes in, a stored one's stays
        task.move(TaskState.COMPLETED, 2.0)
        task.result = [task.number, "é"]
        task.finished_at = 2.0
    await backend.commit([late, *many], [])
    await backend.close()
    await backend.open()  # a new process: the numbers come from the file
    stored = await backend.query(None, None, 1000, None)
    assert len(stored) == 301
    assert {task.state for task in stored} == {TaskState.COMPLETED}
    assert {task.number: task.result for task in stored} == {
        task.number: [task.number, "é"] for task in [late, *many]
    }
    by_number = {task.number: task for task in stored}
    assert by_number[5].payload is None  # written whole when it was first committed
    assert by_number[10].payload == {"n": 10}  # deleted, so written whole again
    assert by_number[11].payload is None
    assert by_number[11].history == (Transition(TaskState.COMPLETED, 2.0),)
    await backend.close()


def test_rows_write_the_json_that_json_dumps_writes() -> None:
    circular: list[object] = []
    circular.append(circular)
    for value in (7, True, None, "é\n", 1.5, [1, {"a": None}], {2: (3,)}, 10**30):
        assert dumps(value) == json.dumps(value, separators=(",", ":"))
    for value in (object(), circular, {"k": {1, 2}}):
        assert json.loads(dumps(value)) == {"__repr__": repr(value)}
    steps = [Transition(TaskState.PENDING, 1.25), Transition(TaskState.RUNNING, 1e-07)]
    as_lists = [[step.state, step.at] for step in steps]
    assert dump_history(steps) == json.dumps(as_lists, separators=(",", ":"))
    assert dump_history([]) == "[]"
    assert load_history(json.loads(dump_history(steps))) == tuple(steps)
    with pytest.raises(ValueError, match="'lost'"):
        load_history([["lost", 1.0]])  # a state of no TaskState, as TaskState("lost") says


@pytest.fixture
def postgres_url():
    postgres_or_skip()
    schema = f"oncue_test_{RUN}_{next(SCHEMAS)}"
    yield with_option(POSTGRES, "schema", schema)
    import psycopg

    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")  # type: ignore[arg-type]


async def test_postgres_writes_only_what_the_shared_rules_allow(postgres_url) -> None:
    """SharedBackend.commit on PostgreSQL, row by row in one batch: owners write while they
    own, others only cancel unfinished or retry failed tasks; the rest come back lost."""
    nodes = []
    for name in ("a", "b"):
        backend = open_backend(postgres_url)
        backend.attach(name, lambda type: 30.0)  # type: ignore[attr-defined]
        await backend.open()
        nodes.append(backend)
    a, b = nodes
    tasks = [record(number, None, TaskState.PENDING) for number in range(1, 6)]
    kept = record(6, None, TaskState.PENDING)
    kept.node = "a"  # a keeps what is submitted to it
    assert await a.commit([*tasks, kept], []) == []
    claimed = await b.claim(10, 0.0)  # type: ignore[attr-defined]
    assert sorted(task.number for task in claimed) == [1, 2, 3, 4, 5]  # not a's own 6
    owned = {task.number: task for task in claimed}
    for task in owned.values():
        task.move(TaskState.RUNNING, 1.0)
    owned[5].move(TaskState.FAILED, 2.0)
    assert await b.commit(list(owned.values()), []) == []
    stolen = record(1, None, TaskState.RUNNING)
    stolen.node = "a"  # a writes as an owner a task b owns
    cancel = record(2, None, TaskState.CANCELLED)  # anyone may cancel an unfinished task
    finish = record(3, 3.0, TaskState.COMPLETED)  # but not finish one it does not own
    retry = record(5, None, TaskState.PENDING)  # and may retry a failed one
    kept.move(TaskState.RUNNING, 1.0)
    lost = await a.commit([stolen, cancel, finish, retry, kept], [])
    assert sorted(lost) == ["task-1", "task-3"]
    owned[2].move(TaskState.COMPLETED, 4.0)  # b no longer owns 2: a cancelled it
    owned[4].move(TaskState.COMPLETED, 4.0)
    assert await b.commit([owned[2], owned[4]], []) == ["task-2"]
    states = {task.number: task.state for task in await a.query(None, None, 10, None)}
    assert states == {
        1: TaskState.RUNNING,
        2: TaskState.CANCELLED,
        3: TaskState.RUNNING,
        4: TaskState.COMPLETED,
        5: TaskState.PENDING,
        6: TaskState.RUNNING,
    }
    assert [task.number for task in await a.claim(10, 0.0)] == [5]  # type: ignore[attr-defined]
    for backend in nodes:
        await backend.close()
