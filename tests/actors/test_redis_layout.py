"""The Redis key layout's version: a new store takes this code's, layout 1 (an older oncue's,
a hash of one field a column) is migrated when no other node is connected, a newer one
refused (redis_lua_layout.py, docs/stores.md)."""

from __future__ import annotations

import itertools

import pytest
from live_servers import REDIS, RUN, drop_redis_prefix, redis_or_skip, with_option

from oncue.actors import open_backend
from oncue.actors.backends.redis_codec import LAYOUT, rank
from oncue.actors.cores.record import TaskRecord
from oncue.actors.task import TaskState, Transition

PREFIXES = itertools.count()


@pytest.fixture
def prefix():
    redis_or_skip()
    name = f"oncue_test_{RUN}_layout{next(PREFIXES)}"
    yield name
    drop_redis_prefix(name)


def attached(prefix: str, node: str = "solo"):
    backend = open_backend(with_option(REDIS, "prefix", prefix))
    backend.attach(node, lambda type_: 30.0)  # type: ignore[attr-defined]
    return backend


def layout_1(client, prefix: str, number: int, **fields: str) -> str:
    """A task written as layout 1 wrote it: one hash field a column, and its index entries."""
    keys, task_id = f"{{{prefix}}}:", f"t-{number}"
    record = TaskRecord(task_id, number, "echo", None, 1, TaskState.PENDING, 0, 3, 5.0, 0.0)
    columns = {
        "id": task_id,
        "priority": "1",
        "state": "pending",
        "attempts": "0",
        "history": '[["pending",1800000000.123456]]',
        "rank": rank(record),
        "lease": "30.0",
        "number": str(number),
        "type": "echo",
        "payload": '{"n":[1,"two"]}',
        "max_retries": "3",
        "timeout": "inf",
        "created_at": "1800000000.123456",
        **fields,
    }
    client.hset(f"{keys}task:{task_id}", mapping=columns)
    client.zadd(f"{keys}all", {task_id: number})
    client.zadd(f"{keys}type:echo", {task_id: number})
    client.zadd(f"{keys}state:{columns['state']}", {task_id: number})
    client.hincrby(f"{keys}counts", f"{columns['state']}:echo", 1)
    if columns["state"] == "pending":
        client.zadd(f"{keys}ready:echo", {columns["rank"]: 0})
    return task_id


async def test_a_layout_1_store_is_migrated_and_its_tasks_read_and_run(prefix) -> None:
    import redis

    with redis.Redis.from_url(REDIS, decode_responses=True) as client:
        waiting = layout_1(client, prefix, 1, key="k-1", owner="me", headers='{"h":"v"}')
        done = layout_1(
            client,
            prefix,
            2,
            state="failed",
            attempts="2",
            started_at="1800000001.5",
            finished_at="1800000002.25",
            result='{"partial":[1]}',
            error='["ValueError","no/slash","tb"]',
            worker="w/1",
            progress='[0.5,"half"]',
            history='[["pending",1.0],["running",2.0,"w/1",null],["failed",3.0,null,"no"]]',
        )
        backend = attached(prefix)
        await backend.open()
        try:
            assert client.get(f"{{{prefix}}}:layout") == str(LAYOUT)
            assert set(client.hkeys(f"{{{prefix}}}:task:{waiting}")) == {
                *("state", "rank", "lease", "number", "type", "key", "owner", "fixed", "live"),
            }
            first = await backend.get(waiting)
            assert (first.payload, first.key, first.owner, first.headers) == (
                {"n": [1, "two"]},
                "k-1",
                "me",
                {"h": "v"},
            )
            assert (first.timeout, first.created_at) == (float("inf"), 1800000000.123456)
            assert first.history == (Transition(TaskState.PENDING, 1800000000.123456),)
            second = await backend.get(done)
            assert (second.state, second.attempts, second.worker) == (TaskState.FAILED, 2, "w/1")
            assert (second.result, second.error.message, second.progress.message) == (
                {"partial": [1]},
                "no/slash",
                "half",
            )
            assert second.history[1] == Transition(TaskState.RUNNING, 2.0, "w/1", None)
            assert (second.started_at, second.finished_at) == (1800000001.5, 1800000002.25)
            [claimed] = await backend.claim(5, 0.0)
            assert (claimed.id, claimed.node, claimed.payload) == (waiting, "solo", first.payload)
            claimed.state, claimed.finished_at = TaskState.COMPLETED, 1800000003.0
            assert await backend.commit([claimed], []) == []
            assert (await backend.get(waiting)).state is TaskState.COMPLETED
        finally:
            await backend.close()


async def test_layout_1_is_not_migrated_while_another_node_is_connected(prefix) -> None:
    import redis

    with redis.Redis.from_url(REDIS, decode_responses=True) as client:
        layout_1(client, prefix, 1)
        other = redis.Redis.from_url(REDIS, client_name=f"oncue:{prefix}:old-node")
        other.ping()
        try:
            backend = attached(prefix)
            with pytest.raises(RuntimeError, match=r"older oncue.*stop every node"):
                await backend.open()
            assert client.get(f"{{{prefix}}}:layout") is None
            assert client.hget(f"{{{prefix}}}:task:t-1", "payload") == '{"n":[1,"two"]}'
        finally:
            other.close()


async def test_a_used_store_without_tasks_is_layout_1_until_migrated(prefix) -> None:
    """Numbers handed out and no task (all purged, say): an older oncue's nodes may still run
    on it, so it is not simply taken as this layout."""
    import redis

    with redis.Redis.from_url(REDIS, decode_responses=True) as client:
        client.set(f"{{{prefix}}}:number", "1024")
        other = redis.Redis.from_url(REDIS, client_name=f"oncue-listen:{prefix}:old-node")
        other.ping()
        try:
            with pytest.raises(RuntimeError, match="older oncue"):
                await attached(prefix).open()
        finally:
            other.close()
        backend = attached(prefix)
        await backend.open()  # nobody else now: migrated (nothing to convert)
        await backend.close()
        assert client.get(f"{{{prefix}}}:layout") == str(LAYOUT)


async def test_a_new_store_takes_this_layout_and_a_newer_one_is_refused(prefix) -> None:
    import redis

    backend = attached(prefix)
    await backend.open()
    await backend.close()
    with redis.Redis.from_url(REDIS, decode_responses=True) as client:
        assert client.get(f"{{{prefix}}}:layout") == str(LAYOUT)
        client.set(f"{{{prefix}}}:layout", str(LAYOUT + 1))
    with pytest.raises(RuntimeError, match="written by a newer oncue"):
        await attached(prefix).open()


async def test_a_new_store_is_not_taken_while_an_older_node_is_connected(prefix) -> None:
    """A node of layout 1 connected to a prefix not used yet would write layout 1 into it."""
    import redis

    with redis.Redis.from_url(REDIS, decode_responses=True) as client:
        other = redis.Redis.from_url(REDIS, client_name=f"oncue-events:{prefix}:old-node")
        other.ping()
        try:
            with pytest.raises(RuntimeError, match=r"is new.*older oncue.*stop every node"):
                await attached(prefix).open()
            assert client.get(f"{{{prefix}}}:layout") is None
        finally:
            other.close()
        backend = attached(prefix)
        await backend.open()
        await backend.close()
        assert client.get(f"{{{prefix}}}:layout") == str(LAYOUT)


async def test_nodes_of_this_layout_connected_do_not_stop_a_migration(prefix) -> None:
    """Two new nodes started together on a layout 1 store both migrate it (a hash converted
    is skipped); only a client of layout 1 refuses it. Other prefixes' clients are not
    counted."""
    import redis

    with redis.Redis.from_url(REDIS, decode_responses=True) as client:
        layout_1(client, prefix, 1)
        first = attached(prefix, "first")
        second = attached(prefix, "second")
        await first.open()  # migrates: nobody else is connected yet
        client.delete(f"{{{prefix}}}:layout")  # as if it were still migrating
        names = [f"oncue:{prefix}x:old", f"oncue:other_{prefix}:old", f"oncue2-listen:{prefix}:a"]
        others = [redis.Redis.from_url(REDIS, client_name=name) for name in names]
        try:
            for other in others:
                other.ping()
            await second.open()  # sees first's connection, and migrates too
            assert client.get(f"{{{prefix}}}:layout") == str(LAYOUT)
            [claimed] = await second.claim(5, 0.0)
            assert claimed.payload == {"n": [1, "two"]}
        finally:
            for other in others:
                other.close()
            await first.close()
            await second.close()


async def test_a_migration_unchecked_for_want_of_client_list_says_so(
    prefix, monkeypatch, caplog
) -> None:
    """Where CLIENT LIST is not allowed, the node migrates (as it must to run at all) and
    logs a warning that older nodes could not be seen."""
    import redis

    from oncue.actors.backends.redis_wire import RedisError

    with redis.Redis.from_url(REDIS, decode_responses=True) as client:
        layout_1(client, prefix, 1)
        other = redis.Redis.from_url(REDIS, client_name=f"oncue:{prefix}:old-node")
        other.ping()
        backend = attached(prefix)
        real = backend._call

        async def denied(*args: object) -> object:
            if args[:2] == ("CLIENT", "LIST"):
                raise RedisError("NOPERM this user has no permissions to run 'client|list'")
            return await real(*args)

        monkeypatch.setattr(backend, "_call", denied)
        try:
            await backend.open()
            await backend.close()
        finally:
            other.close()
        assert client.get(f"{{{prefix}}}:layout") == str(LAYOUT)
    [warning] = [r for r in caplog.records if r.getMessage() == "redis.layout_unchecked"]
    assert (warning.levelname, warning.layout) == ("WARNING", 1)  # type: ignore[attr-defined]
