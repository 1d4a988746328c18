"""What is particular to the Redis backend: URLs, encoding, its listing scan, reconnecting."""

from __future__ import annotations

import functools
import importlib.util
import itertools
import json
import time

import pytest
import trio
from live_servers import REDIS, RUN, drop_redis_prefix, redis_or_skip, with_option

from oncue.actors import BackendUnavailable, open_backend
from oncue.actors.backends import redis as redis_backend
from oncue.actors.backends import redis_kept
from oncue.actors.backends.base import Notice
from oncue.actors.backends.redis import RedisBackend
from oncue.actors.backends.redis_codec import decode, encode, rank
from oncue.actors.backends.redis_wire import _pack, pack, parse_url
from oncue.actors.cores.record import TaskRecord
from oncue.actors.task import PRIORITY_RANGE, Progress, TaskError, TaskState, Transition

PREFIXES = itertools.count()


@pytest.fixture
async def backend():
    redis_or_skip()
    prefix = f"oncue_test_{RUN}_r{next(PREFIXES)}"
    backend = open_backend(with_option(REDIS, "prefix", prefix))
    backend.attach("solo", lambda type_: 30.0)  # type: ignore[attr-defined]
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()
        drop_redis_prefix(prefix)


def task(number: int, **fields: object) -> TaskRecord:
    options: dict[str, object] = {
        "id": f"t-{number}",
        "number": number,
        "type": "echo",
        "payload": {"n": number},
        "priority": 1,
        "state": TaskState.PENDING,
        "attempts": 0,
        "max_retries": 3,
        "timeout": 5.0,
        "created_at": 1_800_000_000.123456,
        **fields,
    }
    return TaskRecord(**options)  # type: ignore[arg-type]


def test_redis_urls_give_the_address_and_the_prefix() -> None:
    address, prefix = parse_url("rediss://me:p%40ss@db:6380/2?prefix=jobs")
    assert (address.host, address.port, address.db, address.tls) == ("db", 6380, 2, True)
    assert (address.username, address.password, prefix) == ("me", "p@ss", "jobs")
    address, prefix = parse_url("redis://127.0.0.1")
    assert (address.port, address.db, address.password, prefix) == (6379, 0, None, "oncue")
    for bad in ("redis://db/x", "redis://db/0?socket_timeout=3", "redis:///0"):
        with pytest.raises(ValueError, match="redis"):
            open_backend(bad)
    if importlib.util.find_spec("hiredis") is not None:
        assert isinstance(open_backend("redis://db/0"), RedisBackend)


def test_a_command_packs_as_resp_whatever_packs_it() -> None:
    pytest.importorskip("hiredis")
    args = ["EVALSHA", b"\x00raw", 1, -7, 2**70, 0.1, 1e20, 1_800_000_000.123456, "é", ""]
    assert pack(args) == _pack(args)
    assert pack(["SET", True]) == _pack(["SET", True]) == b"*2\r\n$3\r\nSET\r\n$4\r\nTrue\r\n"


def test_a_redis_url_without_the_extra_names_it(monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "hiredis" else real(name)
    )
    with pytest.raises(ValueError, match=r"pip install 'oncue\[redis\]'"):
        open_backend("redis://127.0.0.1:6379/0")


def test_the_ready_rank_orders_every_64_bit_priority_then_number() -> None:
    low, high = PRIORITY_RANGE
    records = [task(2, priority=high), task(1, priority=high), task(3, priority=0)]
    records += [task(4, priority=-1), task(5, priority=low), task(2**40, priority=0)]
    ordered = sorted(records, key=rank)
    assert [(r.priority, r.number) for r in ordered] == [
        (high, 1),
        (high, 2),
        (0, 3),
        (0, 2**40),
        (-1, 4),
        (low, 5),
    ]


def test_a_transition_sends_its_live_value_and_no_payload() -> None:
    """A transition is 8 values (what changes, as one ``live`` text); a whole record 15, its
    payload in ``fixed``; decode reads both back (redis_codec)."""
    running = task(1, node="solo", state=TaskState.RUNNING, attempts=1, worker="w-1")
    running.started_at = 1_800_000_001.5
    running.history = (Transition(TaskState.PENDING, 1.0), Transition(TaskState.RUNNING, 2.0))
    transition = encode(running, 30.0, full=False)
    assert transition[:7] == ["010000", "t-1", "running", "solo", "1", "", ""]
    assert json.loads(transition[7]) == [
        1,
        None,
        1_800_000_001.5,
        None,
        None,
        None,
        "w-1",
        None,
        [["pending", 1.0], ["running", 2.0]],
    ]
    whole = encode(running, 30.0)
    assert len(whole) == 15
    assert whole[0] == "110000"
    assert whole[8:12] == ["1", "echo", rank(running), "30.0"]
    assert whole[14].endswith('\n{"n":1}')
    back = decode(["running", "solo", whole[14], whole[7]])
    assert vars(back) == vars(running)
    assert (back.payload_json, back.node) == ('{"n":1}', "solo")


def test_a_timeout_without_end_round_trips() -> None:
    forever = task(2, timeout=float("inf"), key="k", owner="me", headers={"a": "b"})
    whole = encode(forever, 30.0)
    assert whole[0] == "100011"
    assert whole[12:14] == ["k", "me"]
    back = decode(["pending", None, whole[14], whole[7]])
    assert vars(back) == vars(forever)


async def test_every_field_round_trips_including_the_empty_ones(backend) -> None:
    full = task(
        1,
        key="k",
        owner="me",
        run_at=1_800_000_100.5,
        priority=2**62,
        history=(Transition(TaskState.PENDING, 1_800_000_000.123456),),
    )
    await backend.commit([full, task(2)], [])
    [claimed] = await backend.claim(1, 1e9)
    claimed.state = TaskState.FAILED
    claimed.result = {"partial": [1, 2]}
    claimed.error = TaskError("RuntimeError", "nope", "Traceback ...")
    claimed.progress = Progress(0.5, "half")
    claimed.worker = "worker-1"
    claimed.finished_at = claimed.started_at = 1_800_000_001.25
    claimed.run_at = None
    await backend.commit([claimed], [])
    stored = await backend.get(full.id)
    for name in ("payload", "result", "error", "progress", "history", "key", "owner", "worker"):
        assert getattr(stored, name) == getattr(claimed, name), name
    assert (stored.priority, stored.run_at, stored.finished_at) == (2**62, None, 1_800_000_001.25)
    assert stored.node is None
    plain = await backend.get("t-2")
    assert (plain.key, plain.result, plain.error, plain.history) == (None, None, None, ())


async def test_a_claim_takes_the_copy_it_wrote_unless_the_task_changed_since(
    backend, monkeypatch
) -> None:
    """A claim of a task this node wrote takes the copy kept at its commit, not its stored
    values decoded; once another node changed it (claimed, then gave it back: a history step
    more), they are decoded."""
    decoded: list[str] = []
    real = redis_backend.decode

    def spy(values: list[str]) -> TaskRecord:
        decoded.append(values[0])
        return real(values)

    monkeypatch.setattr(redis_backend, "decode", spy)
    other = open_backend(with_option(REDIS, "prefix", backend.prefix))
    other.attach("other", lambda type_: 30.0)  # type: ignore[attr-defined]
    await other.open()
    try:
        first = task(1, history=(Transition(TaskState.PENDING, 1.0),))
        second = task(2, history=(Transition(TaskState.PENDING, 2.0),))
        await backend.commit([first, second], [])
        [taken] = await other.claim(1, 0.0)  # decoded there: not its own
        taken.attempts, taken.started_at = 1, 3.0
        taken.move(TaskState.RUNNING, 3.0, "w-1")
        assert await other.commit([taken], []) == []
        assert await other.release() == 1  # pending again, a step more
        claimed = await backend.claim(5, 0.0)
        assert [record.id for record in claimed] == ["t-1", "t-2"]
        assert decoded == ["pending", "pending"]  # t-1 by the other node, then here; not t-2
        assert [step.state for step in claimed[0].history] == [
            TaskState.PENDING,
            TaskState.RUNNING,
            TaskState.PENDING,
        ]
        assert (claimed[0].attempts, claimed[0].started_at) == (1, 3.0)
        stored = await backend.get("t-2")
        assert vars(claimed[1]) == vars(stored)
        assert claimed[1].node == "solo"
        assert claimed[1].payload is second.payload  # the submitted object, as in memory
        assert backend._kept.copies == {}  # type: ignore[attr-defined]
    finally:
        await other.close()


async def test_the_kept_copies_are_bounded_by_count_and_by_their_text(backend, monkeypatch) -> None:
    """At most WRITTEN_KEPT copies and WRITTEN_BYTES of their ``fixed`` texts, the oldest
    dropped first; a claim that takes a copy, or decodes instead, gives its room back."""
    kept = backend._kept
    written = kept.copies
    monkeypatch.setattr(redis_kept, "WRITTEN_KEPT", 3)
    await backend.commit([task(n) for n in range(1, 6)], [])
    assert list(written) == ["t-3", "t-4", "t-5"]
    one = len(encode(task(6), 30.0)[14])  # the same length for t-6 to t-9
    assert kept.size == sum(copy[4] for copy in written.values())
    monkeypatch.setattr(redis_kept, "WRITTEN_BYTES", 2 * one + one // 2)
    await backend.commit([task(6)], [])
    assert list(written) == ["t-5", "t-6"]
    await backend.commit([task(7)], [])
    assert list(written) == ["t-6", "t-7"]
    await backend.commit([task(8, payload={"n": "x" * one})], [])  # about two copies' worth
    assert list(written) == ["t-8"]
    assert kept.size == len(encode(task(8, payload={"n": "x" * one}), 30.0)[14])
    assert len(await backend.claim(10, 0.0)) == 8
    assert (written, kept.size) == ({}, 0)


async def test_no_copy_is_kept_of_a_type_the_node_does_not_claim(backend) -> None:
    """A node that submits tasks it never claims (another node runs their type) would hold
    their copies until they were pushed out."""
    other = open_backend(with_option(REDIS, "prefix", backend.prefix))
    other.attach("other", lambda type_: 30.0, runs=["resize"])  # type: ignore[attr-defined]
    await other.open()
    try:
        await other.commit([task(1), task(2, type="resize")], [])
        assert list(other._kept.copies) == ["t-2"]  # type: ignore[attr-defined]
    finally:
        await other.close()


async def test_get_finished_reads_whole_only_the_finished_tasks(backend) -> None:
    await backend.commit([task(1), task(2), task(3)], [])
    [one, two] = await backend.claim(2, 0.0)
    one.state, one.result, one.finished_at = TaskState.COMPLETED, [1], 1_800_000_001.0
    two.state, two.error = TaskState.FAILED, TaskError("ValueError", "no", "")
    await backend.commit([one, two], [])
    finished, unfinished = await backend.get_finished(["t-3", "t-2", "nope", "t-1"])
    assert sorted((r.id, r.state, r.result) for r in finished) == [
        ("t-1", TaskState.COMPLETED, [1]),
        ("t-2", TaskState.FAILED, None),
    ]
    assert unfinished == {"t-3"}
    assert await backend.get_finished([]) == ([], set())


async def test_a_filtered_listing_scans_past_one_script_budget(backend, monkeypatch) -> None:
    monkeypatch.setattr(redis_backend, "QUERY_BUDGET", 7)
    records = [task(n, type="rare" if n % 10 == 0 else "common", owner="o") for n in range(1, 51)]
    await backend.commit(records, [])
    found = await backend.query(None, "rare", 3, None, owner="o")
    assert [record.number for record in found] == [50, 40, 30]
    found = await backend.query(TaskState.PENDING, "rare", 10, 30, owner="o")
    assert [record.number for record in found] == [20, 10]


async def test_every_key_lives_under_the_prefix_hash_tag(backend) -> None:
    import redis

    await backend.commit([task(1, key="k", owner="o", run_at=time.time() + 60), task(2)], [])
    await backend.claim(1, 0.0)
    with redis.Redis.from_url(REDIS, decode_responses=True) as client:
        keys = set(client.scan_iter(match=f"*{backend.prefix}*"))
    assert keys
    assert all(key.startswith(f"{{{backend.prefix}}}:") for key in keys)


async def test_the_listener_reconnects_and_says_so(backend) -> None:
    import redis

    send, receive = trio.open_memory_channel[Notice](10)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(backend.listen, send.send_nowait)
        with trio.fail_after(10):
            assert await receive.receive() == Notice("listening")
            with redis.Redis.from_url(REDIS, decode_responses=True) as client:
                name = f"oncue2-listen:{backend.prefix}:solo"
                [ours] = [c["id"] for c in client.client_list() if c["name"] == name]
                client.client_kill_filter(_id=ours)
            assert await receive.receive() == Notice("listening")
            other = open_backend(with_option(REDIS, "prefix", backend.prefix))
            other.attach("other", lambda type_: 30.0)  # type: ignore[attr-defined]
            await other.open()
            await other.commit([task(1)], [])  # what the listener's own node does, it knows
            await other.close()
            assert await receive.receive() == Notice("ready")
        nursery.cancel_scope.cancel()


async def test_a_transition_of_a_task_deleted_meanwhile_is_lost_not_half_written(backend) -> None:
    other = open_backend(with_option(REDIS, "prefix", backend.prefix))
    other.attach("other", lambda type_: 30.0)  # type: ignore[attr-defined]
    await other.open()
    try:
        await backend.commit([task(1)], [])
        [claimed] = await backend.claim(1, 0.0)  # now known: its writes omit the payload
        view = await other.get(claimed.id)
        view.state = TaskState.CANCELLED
        view.finished_at = time.time()
        assert list(await other.commit([view], [claimed.id])) == []
    finally:
        await other.close()
    claimed.state = TaskState.RUNNING
    assert list(await backend.commit([claimed], [])) == [claimed.id]
    assert await backend.get(claimed.id) is None


async def test_renew_gives_back_a_claim_whose_reply_never_arrived(backend) -> None:
    await backend.commit([task(1), task(2)], [])
    [held] = await backend.claim(1, 0.0)
    await backend._script("claim", backend.node, 1, 0.0, 30.0, -1)  # its reply "lost"
    assert list(await backend.renew()) == []  # the one it holds is renewed, the other given back
    [again] = await backend.claim(5, 0.0)
    assert again.id == "t-2"
    assert {r.id for r in await backend.load_unfinished()} == {held.id, again.id}


async def test_a_connection_redis_closed_is_replaced(backend) -> None:
    import redis

    await backend.commit([task(1)], [])

    def kill_ours() -> None:
        with redis.Redis.from_url(REDIS, decode_responses=True) as client:
            name = f"oncue2:{backend.prefix}:solo"
            for found in client.client_list():
                if found["name"] == name:
                    client.client_kill_filter(_id=found["id"])

    kill_ours()
    assert (await backend.get("t-1")).number == 1  # a read is sent again on a new connection
    kill_ours()
    with pytest.raises(BackendUnavailable):  # a write's outcome is unknown: the store decides
        await backend.commit([task(2)], [])
    assert list(await backend.commit([task(3)], [])) == []
    assert (await backend.get("t-3")).number == 3


async def test_scripts_flushed_from_redis_are_loaded_again(backend) -> None:
    import redis

    await backend.commit([task(1)], [])
    with redis.Redis.from_url(REDIS) as client:
        client.script_flush()  # as after a restart of Redis
    assert [record.id for record in await backend.claim(1, 0.0)] == ["t-1"]


async def test_opening_says_what_a_crash_of_redis_would_lose(backend, caplog) -> None:
    import redis

    with redis.Redis.from_url(REDIS, decode_responses=True) as client:
        appendonly = client.config_get("appendonly")["appendonly"]
    await backend.close()
    with caplog.at_level("INFO", logger="oncue.actors.backends.redis"):
        await backend.open()
    expected = "redis.durable" if appendonly == "yes" else "redis.not_durable"
    assert any(expected in record.getMessage() for record in caplog.records)


async def test_a_claim_moves_a_single_ready_queue_of_an_older_store_into_the_type_queues(
    backend,
) -> None:
    import redis

    await backend.commit([task(1), task(2, priority=5), task(3, state=TaskState.CANCELLED)], [])
    with redis.Redis.from_url(REDIS, decode_responses=True) as client:  # as an older oncue kept it
        ready = f"{backend.keys}ready"
        ranks = client.zrange(f"{ready}:echo", 0, -1)
        client.delete(f"{ready}:echo")
        client.zadd(ready, dict.fromkeys([*ranks, rank(task(3))], 0))
    claimed = await backend.claim(10, 0.0)
    assert [record.id for record in claimed] == ["t-2", "t-1"]  # not the cancelled one
    with redis.Redis.from_url(REDIS, decode_responses=True) as client:
        assert client.exists(ready) == 0


async def test_the_queued_counts_of_an_older_store_are_counted_once_at_open(backend) -> None:
    import redis

    waiting = [task(1), task(2, priority=5), task(3, priority=5, state=TaskState.RETRYING)]
    await backend.commit([*waiting, task(4, state=TaskState.RUNNING)], [])
    with redis.Redis.from_url(REDIS, decode_responses=True) as client:  # as an older oncue kept it
        client.delete(f"{backend.keys}queued", f"{backend.keys}queued_kept")
    assert await backend.queued_by_priority() == {}
    await backend.close()
    await backend.open()
    assert await backend.queued_by_priority() == {5: 2, 1: 1}
    await backend.close()
    await backend.open()  # counted once: kept by the scripts from then on
    assert await backend.queued_by_priority() == {5: 2, 1: 1}


def dump(prefix: str) -> dict[str, object]:
    """Every key of a prefix as plain values, leases by member only (their scores are times)."""
    import redis

    dumped: dict[str, object] = {}
    with redis.Redis.from_url(REDIS, decode_responses=True) as client:
        for key in client.scan_iter(match=f"{{{prefix}}}:*"):
            name, kind = key.split(":", 1)[1], client.type(key)
            if kind == "zset":
                pairs = client.zrange(key, 0, -1, withscores=True)
                dumped[name] = [m for m, _ in pairs] if name == "leases" else pairs
            elif kind == "hash":
                dumped[name] = client.hgetall(key)
            elif kind == "set":
                dumped[name] = sorted(client.smembers(key))
            else:
                dumped[name] = client.get(key)
    return dumped


async def test_a_batch_leaves_the_keys_one_commit_a_task_would(backend) -> None:
    """The scripts gather their index writes and send them at the end (redis_lua.flush):
    the same writes batched and one at a time leave the same keys, a task finished and
    deleted in one commit included."""
    alone = open_backend(with_option(REDIS, "prefix", f"{backend.prefix}_alone"))
    alone.attach("solo", lambda type_: 30.0)  # type: ignore[attr-defined]
    await alone.open()
    try:
        for store, batched in ((backend, True), (alone, False)):
            fresh = [task(n, priority=n % 3, owner="me" if n % 2 else None) for n in range(1, 7)]
            fresh.append(task(7, run_at=1e12))  # delayed
            for some in [fresh] if batched else [[record] for record in fresh]:
                await store.commit(some, [])
            claimed = await store.claim(4, 0.0)
            for record in claimed:
                record.state, record.attempts = TaskState.RUNNING, 1
            for some in [claimed] if batched else [[record] for record in claimed]:
                await store.commit(some, [])
            ended, deleted = claimed[:3], claimed[0].id
            for record in ended:
                record.state, record.finished_at = TaskState.COMPLETED, 1_800_000_002.0
            if batched:
                await store.commit(ended, [deleted])
            else:
                for record in ended:
                    await store.commit([record], [])
                await store.commit([], [deleted])
        assert dump(backend.prefix) == dump(f"{backend.prefix}_alone")
    finally:
        await alone.close()
        drop_redis_prefix(f"{backend.prefix}_alone")


async def test_a_claim_takes_what_its_own_reap_gave_back(backend) -> None:
    await backend.commit([task(1)], [])
    [claimed] = await backend.claim(1, 0.0)
    backend._leases["echo"] = 0.0  # type: ignore[attr-defined]  # its lease is over at once
    await backend._script("set_leases", "solo", claimed.id, "0")  # type: ignore[attr-defined]
    backend._known.clear()  # type: ignore[attr-defined]
    [again] = await backend.claim(1, 0.0)
    assert (again.id, again.state, again.node) == (claimed.id, TaskState.PENDING, "solo")


async def test_events_are_worth_publishing_only_while_another_node_listens(backend) -> None:
    """Our own events listener is counted apart (it also subscribes to a channel of its own),
    so a node alone on the prefix does not publish what only it would hear."""
    other = open_backend(with_option(REDIS, "prefix", backend.prefix))
    other.attach("other", lambda type_: 30.0)  # type: ignore[attr-defined]
    await other.open()
    send, heard = trio.open_memory_channel[str](10)
    try:
        async with trio.open_nursery() as nursery:
            assert not await backend.others_listening()
            await nursery.start(functools.partial(backend.listen_events, lambda _: None))
            assert not await backend.others_listening()  # only ourselves
            await nursery.start(functools.partial(other.listen_events, send.send_nowait))
            assert await backend.others_listening()
            await backend.publish_events(['["solo"]'])
            with trio.fail_after(10):
                assert await heard.receive() == '["solo"]'
            nursery.cancel_scope.cancel()
    finally:
        await other.close()


async def test_a_commit_bigger_than_one_gathered_command_indexes_every_task(backend) -> None:
    """A script sends its gathered writes 4,000 arguments a command (redis_lua.CHUNK)."""
    many = [task(n, priority=n % 2) for n in range(1, 5_001)]
    await backend.commit(many, [])
    assert await backend.counts() == {("echo", TaskState.PENDING): 5_000}
    assert await backend.queued_by_priority() == {0: 2_500, 1: 2_500}
    listed = await backend.query(TaskState.PENDING, "echo", 10_000, None)
    assert len(listed) == 5_000
    claimed = await backend.claim(5_000, 0.0)
    assert [record.number for record in claimed[:2]] == [1, 3]  # priority 1 first
    assert len(claimed) == 5_000
