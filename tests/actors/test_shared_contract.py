"""The SharedBackend contract, checked on the backend itself: two nodes attached to one store.

Each test gets two backend objects of one kind sharing one store (one prefix or schema), as
two engines on two machines would. Leases run on the backend's clock, which is real time, so
the few tests about expiry use short leases and wait for outcomes, never assert durations.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from live_servers import REDIS, RUN, drop_redis_prefix, redis_or_skip, with_option

from oncue.actors import open_backend
from oncue.actors.backends.base import Notice, SharedBackend
from oncue.actors.backends.shared_memory import SharedMemory, SharedMemoryBackend
from oncue.actors.cores.record import TaskRecord
from oncue.actors.task import TaskError, TaskState, Transition

SHORT = 0.3  # the lease of type "short", in seconds
LEASES = {"short": SHORT}
PREFIXES = itertools.count()
KINDS = ["redis", "postgres", "shared-memory"]


def lease_for(type_: str) -> float:
    return LEASES.get(type_, 30.0)


def fresh_store(kind: str) -> tuple[str, Callable[[], None]]:
    """The URL of an empty shared store of this kind, and how to remove it afterwards."""
    if kind == "redis":
        redis_or_skip()
        prefix = f"oncue_test_{RUN}_{next(PREFIXES)}"
        return with_option(REDIS, "prefix", prefix), lambda: drop_redis_prefix(prefix)
    raise ValueError(f"no shared store of kind {kind!r}")


@asynccontextmanager
async def open_pair(
    kind: str, request: Any, runs: tuple[set[str] | None, set[str] | None] = (None, None)
) -> AsyncIterator[tuple[Any, Any]]:
    """Two attached, open backends of one kind on one fresh store: nodes "a" and "b", which
    run the types ``runs`` names (None: any)."""
    if kind == "postgres":
        url, drop = request.getfixturevalue("postgres_store"), lambda: None
    elif kind == "shared-memory":  # the in-process reference: leases on trio's clock
        hub = SharedMemory()
        url, drop = "", lambda: None
    else:
        url, drop = fresh_store(kind)
    nodes: list[Any] = []
    try:
        for name, types in zip(("a", "b"), runs, strict=True):
            backend = SharedMemoryBackend(hub) if not url else open_backend(url)
            backend.attach(name, lease_for, types)  # type: ignore[attr-defined]
            nodes.append(backend)
            await backend.open()
        yield nodes[0], nodes[1]
    finally:
        for backend in nodes:
            await backend.close()
        drop()


@pytest.fixture(params=KINDS)
async def pair(request):
    """Two nodes on one fresh store, both running any type."""
    async with open_pair(request.param, request) as nodes:
        yield nodes


@pytest.fixture(params=KINDS)
async def picky_pair(request):
    """Two nodes on one fresh store: "a" runs echo only, "b" runs special only."""
    async with open_pair(request.param, request, ({"echo"}, {"special"})) as nodes:
        yield nodes


def task(number: int, *, priority: int = 1, type: str = "echo", **fields: Any) -> TaskRecord:
    """A new task as a store submits it: pending, owned by no node."""
    return TaskRecord(
        id=f"task-{number}",
        number=number,
        type=type,
        payload={"n": number},
        priority=priority,
        state=TaskState.PENDING,
        attempts=0,
        max_retries=3,
        timeout=5.0,
        created_at=time.time(),
        history=(Transition(TaskState.PENDING, time.time()),),
        **fields,
    )


def moved(record: TaskRecord, state: TaskState, **fields: Any) -> TaskRecord:
    """The record after a transition, as the node's store would write it."""
    now = time.time()
    record.move(state, now)
    if state is TaskState.RUNNING:
        record.attempts += 1
        record.started_at = now
    if state.finished:
        record.finished_at = now
    for name, value in fields.items():
        setattr(record, name, value)
    return record


async def submit(backend: SharedBackend, *records: TaskRecord) -> None:
    assert list(await backend.commit(records, [])) == []


async def until(predicate: Callable[[], Awaitable[Any]]) -> Any:
    """Ask until ``predicate`` answers something true: a lease expires on the backend's clock,
    real time, which no event of ours can announce."""
    with trio.fail_after(10):
        while not (answer := await predicate()):  # noqa: ASYNC110 - polling the backend
            await trio.sleep(SHORT / 4)
    return answer


async def test_claims_take_priority_first_then_number_and_keep_the_state(pair) -> None:
    a, b = pair
    numbers = await a.reserve_numbers()
    first = numbers[0]
    await submit(a, *(task(first + n, priority=n % 3) for n in range(9)))
    claimed = await b.claim(4, 0.0)
    rest = await a.claim(100, 0.0)
    assert [(r.priority, r.number - first) for r in claimed] == [(2, 2), (2, 5), (2, 8), (1, 1)]
    assert [r.number - first for r in rest] == [4, 7, 0, 3, 6]
    assert {r.node for r in claimed} == {"b"}
    assert {r.node for r in rest} == {"a"}
    assert {r.state for r in claimed + rest} == {TaskState.PENDING}
    assert await a.claim(10, 0.0) == []


async def test_a_node_claims_only_the_types_it_runs_and_the_rest_stays_pending(
    picky_pair,
) -> None:
    a, b = picky_pair
    numbers = iter(await a.reserve_numbers())
    soon = time.time() + 2
    echo, special, orphan, echo_soon = (
        task(next(numbers), type="echo"),
        task(next(numbers), type="special", priority=3),
        task(next(numbers), type="orphan", priority=9),
        task(next(numbers), type="echo", run_at=soon),
    )
    await submit(a, echo, special, orphan, echo_soon)
    assert [r.id for r in await a.claim(10, 10.0)] == [echo.id, echo_soon.id]
    assert [r.id for r in await b.claim(10, 10.0)] == [special.id]
    assert await a.claim(10, 10.0) == []
    assert await b.claim(10, 10.0) == []
    await b.release()  # given back: still only b's to claim
    assert await a.claim(10, 10.0) == []
    assert [r.id for r in await b.claim(10, 10.0)] == [special.id]
    left = await a.get(orphan.id)
    assert left is not None
    assert (left.state, left.node) == (TaskState.PENDING, None)


async def test_two_nodes_claiming_at_once_never_own_the_same_task(pair) -> None:
    a, b = pair
    numbers = iter(await a.reserve_numbers())
    await submit(a, *(task(next(numbers)) for _ in range(300)))
    owned: dict[str, list[str]] = {"a": [], "b": []}

    async def drain(backend: SharedBackend) -> None:
        while claimed := await backend.claim(7, 0.0):
            owned[backend.node].extend(record.id for record in claimed)  # type: ignore[attr-defined]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(drain, a)
        nursery.start_soon(drain, b)
    assert not set(owned["a"]) & set(owned["b"])
    assert len(owned["a"]) + len(owned["b"]) == 300
    loaded_a = {record.id for record in await a.load_unfinished()}
    assert loaded_a == set(owned["a"])


async def test_a_claim_takes_what_is_due_within_the_window_only(pair) -> None:
    a, _ = pair
    numbers = iter(await a.reserve_numbers())
    now = time.time()
    past, soon, later = (task(next(numbers), run_at=now + delay) for delay in (-5, 2, 3600))
    await submit(a, past, soon, later)
    assert [r.id for r in await a.claim(10, 0.0)] == [past.id]
    assert [r.id for r in await a.claim(10, 10.0)] == [soon.id]
    assert await a.claim(10, 10.0) == []
    assert await a.unfinished_count() == 3


async def test_an_expired_lease_is_reaped_and_its_owner_loses_the_task(pair) -> None:
    a, b = pair
    number = (await a.reserve_numbers())[0]
    await submit(a, task(number, type="short"))
    [claimed] = await a.claim(1, 0.0)
    assert await a.commit([moved(claimed, TaskState.RUNNING)], []) == []
    await until(b.reap)
    [again] = await b.claim(1, 0.0)
    assert (again.id, again.state, again.attempts, again.node) == (
        claimed.id,
        TaskState.PENDING,
        1,
        "b",
    )
    late = moved(claimed, TaskState.COMPLETED, result=42)
    assert list(await a.commit([late], [])) == [claimed.id]
    assert (await b.get(claimed.id)).state is TaskState.PENDING  # type: ignore[union-attr]
    assert await a.load_unfinished() == []


async def test_a_claim_takes_over_an_expired_lease_without_a_reap(pair) -> None:
    a, b = pair
    number = (await a.reserve_numbers())[0]
    await submit(a, task(number, type="short"))
    [claimed] = await a.claim(1, 0.0)
    taken = await until(lambda: b.claim(1, 0.0))
    assert [record.id for record in taken] == [claimed.id]
    assert list(await a.commit([moved(claimed, TaskState.RUNNING)], [])) == [claimed.id]


async def test_a_renewal_names_what_another_node_took_after_the_lease_ran_out(pair) -> None:
    a, b = pair
    number = (await a.reserve_numbers())[0]
    await submit(a, task(number, type="short"), task(number + 1, type="short"))
    claimed = await a.claim(2, 0.0)
    assert await a.commit([moved(record, TaskState.RUNNING) for record in claimed], []) == []
    await until(b.reap)  # a stalled past its leases: b gives both tasks back...
    [taken] = await b.claim(1, 0.0)  # ...and takes one
    assert sorted(await a.renew()) == sorted(record.id for record in claimed)
    assert list(await a.renew()) == []  # said once
    assert [record.id for record in await a.claim(5, 0.0)] == [
        record.id for record in claimed if record.id != taken.id
    ]


async def test_renewing_keeps_a_task_past_its_lease(pair) -> None:
    a, b = pair
    number = (await a.reserve_numbers())[0]
    await submit(a, task(number, type="short"))
    [claimed] = await a.claim(1, 0.0)
    running = moved(claimed, TaskState.RUNNING)
    assert await a.commit([running], []) == []
    deadline = trio.current_time() + 2 * SHORT
    while trio.current_time() < deadline:
        assert list(await a.renew()) == []  # renewed, none lost
        await trio.sleep(SHORT / 6)
    assert await b.reap() == 0
    assert await b.claim(1, 0.0) == []
    assert list(await a.commit([moved(running, TaskState.COMPLETED, result=1)], [])) == []
    assert list(await a.renew()) == []


async def test_release_gives_back_every_task_a_node_owns(pair) -> None:
    a, b = pair
    numbers = iter(await a.reserve_numbers())
    await submit(a, task(next(numbers)), task(next(numbers)))
    first, second = await a.claim(2, 0.0)
    assert await a.commit([moved(first, TaskState.RUNNING)], []) == []
    assert await a.release() == 2
    taken = {record.id: record for record in await b.claim(10, 0.0)}
    assert set(taken) == {first.id, second.id}
    assert taken[first.id].state is TaskState.PENDING
    assert taken[first.id].attempts == 1
    assert [step.state for step in taken[first.id].history] == ["pending", "running", "pending"]


async def test_a_node_may_cancel_an_unfinished_task_it_does_not_own(pair) -> None:
    a, b = pair
    numbers = iter(await a.reserve_numbers())
    done = task(next(numbers), priority=3)
    owned = task(next(numbers), priority=2)
    queued = task(next(numbers), priority=0)
    await submit(a, done, owned, queued)
    finished, running = await a.claim(2, 0.0)
    assert await a.commit([moved(finished, TaskState.COMPLETED)], []) == []
    assert await a.commit([moved(running, TaskState.RUNNING)], []) == []
    views = [await b.get(record.id) for record in (owned, queued, done)]
    cancels = [moved(view, TaskState.CANCELLED) for view in views]  # type: ignore[arg-type]
    assert list(await b.commit(cancels, [])) == [done.id]
    late = moved(running, TaskState.COMPLETED, result=1)
    assert list(await a.commit([late], [])) == [owned.id]
    stored = await a.get(owned.id)
    assert stored is not None
    assert (stored.state, stored.node) == (TaskState.CANCELLED, None)
    assert await a.load_unfinished() == []
    assert list(await a.renew()) == []
    assert await b.claim(10, 0.0) == []


async def test_a_node_may_retry_a_failed_task_only(pair) -> None:
    a, b = pair
    numbers = iter(await a.reserve_numbers())
    failing, passing = task(next(numbers)), task(next(numbers))
    await submit(a, failing, passing)
    claimed = {record.id: record for record in await a.claim(2, 0.0)}
    error = TaskError("RuntimeError", "nope")
    assert await a.commit([moved(claimed[failing.id], TaskState.FAILED, error=error)], []) == []
    assert await a.commit([moved(claimed[passing.id], TaskState.COMPLETED)], []) == []
    retries = [moved(await b.get(r.id), TaskState.PENDING) for r in (failing, passing)]  # type: ignore[arg-type]
    assert list(await b.commit(retries, [])) == [passing.id]
    assert [record.id for record in await a.claim(10, 0.0)] == [failing.id]


async def test_deletes_remove_finished_tasks_only(pair) -> None:
    a, b = pair
    numbers = iter(await a.reserve_numbers())
    waiting, done = task(next(numbers)), task(next(numbers), key="k")
    await submit(a, waiting, done)
    [claimed] = [r for r in await a.claim(2, 0.0) if r.id == done.id]
    assert await a.commit([moved(claimed, TaskState.COMPLETED)], []) == []
    await b.commit([], [waiting.id, done.id])
    assert await a.get(done.id) is None
    assert await a.find_key("k") is None
    assert (await a.get(waiting.id)) is not None
    assert await b.counts() == {("echo", TaskState.PENDING): 1}


async def test_notices_reach_the_other_nodes_never_their_origin(pair) -> None:
    a, b = pair
    channels = {name: trio.open_memory_channel[Notice](100) for name in ("a", "b")}

    async def heard(name: str) -> Notice:
        with trio.fail_after(10):
            return await channels[name][1].receive()

    async with trio.open_nursery() as nursery:
        for name, backend in (("a", a), ("b", b)):
            nursery.start_soon(backend.listen, channels[name][0].send_nowait)
            assert await heard(name) == Notice("listening")
        numbers = iter(await a.reserve_numbers())
        first, second = task(next(numbers)), task(next(numbers))
        await submit(a, first, second)
        assert await heard("b") == Notice("ready")
        claimed = {record.id: record for record in await a.claim(2, 0.0)}
        await a.commit([moved(claimed[first.id], TaskState.COMPLETED)], [])
        assert await heard("b") == Notice("finished", (first.id,))
        view = await b.get(second.id)
        await b.commit([moved(view, TaskState.CANCELLED)], [])  # type: ignore[arg-type]
        both = {await heard("a"), await heard("a")}  # in either order
        assert both == {Notice("cancelled", (second.id,)), Notice("finished", (second.id,))}
        await a.commit([task(next(numbers), type="short")], [])
        assert await heard("b") == Notice("ready")
        await a.claim(1, 0.0)
        await until(a.reap)
        assert await heard("b") == Notice("ready")
        await submit(b, task(next(numbers)))  # notices arrive in order: a heard nothing of its own
        assert await heard("a") == Notice("ready")
        nursery.cancel_scope.cancel()


async def test_task_numbers_are_unique_across_nodes(pair) -> None:
    a, b = pair
    blocks: dict[str, list[range]] = {"a": [], "b": []}

    async def reserve(backend: SharedBackend) -> None:
        for _ in range(20):
            blocks[backend.node].append(await backend.reserve_numbers())  # type: ignore[attr-defined]

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reserve, a)
        nursery.start_soon(reserve, b)
    numbers = [n for block in blocks["a"] + blocks["b"] for n in block]
    assert len(numbers) == len(set(numbers))
    assert min(numbers) >= 1
    for node_blocks in blocks.values():
        firsts = [block[0] for block in node_blocks]
        assert firsts == sorted(firsts)


async def test_counts_and_unfinished_count_cover_every_node(pair) -> None:
    a, b = pair
    numbers = iter(await a.reserve_numbers())
    await submit(a, task(next(numbers)), task(next(numbers), type="other"))
    await submit(b, task(next(numbers)))
    [claimed] = await b.claim(1, 0.0)
    assert await b.commit([moved(claimed, TaskState.COMPLETED)], []) == []
    assert await a.unfinished_count() == 2
    assert await a.counts() == {
        ("echo", TaskState.PENDING): 1,
        ("echo", TaskState.COMPLETED): 1,
        ("other", TaskState.PENDING): 1,
    }


async def test_queued_by_priority_counts_every_nodes_waiting_tasks(pair) -> None:
    a, b = pair
    numbers = iter(await a.reserve_numbers())
    high, low = task(next(numbers), priority=2), task(next(numbers), priority=0)
    await submit(a, high, low)
    await submit(b, task(next(numbers), priority=2), other := task(next(numbers), priority=-5))
    assert await b.queued_by_priority() == {2: 2, 0: 1, -5: 1}
    claimed, _ = await a.claim(2, 0.0)  # claimed, not started: still waiting
    assert await b.queued_by_priority() == {2: 2, 0: 1, -5: 1}
    assert await a.commit([moved(claimed, TaskState.RUNNING)], []) == []
    assert await b.queued_by_priority() == {2: 1, 0: 1, -5: 1}
    assert await a.release() == 2  # running goes back to pending
    assert await b.queued_by_priority() == {2: 2, 0: 1, -5: 1}
    cancel = moved(await b.get(other.id), TaskState.CANCELLED)  # type: ignore[arg-type]
    assert list(await b.commit([cancel], [])) == []
    [failing] = [record for record in await a.claim(10, 0.0) if record.id == low.id]
    assert await a.commit([moved(failing, TaskState.RUNNING)], []) == []
    assert await a.commit([moved(failing, TaskState.RETRYING)], []) == []
    assert await b.queued_by_priority() == {2: 2, 0: 1}
    assert await a.commit([moved(failing, TaskState.FAILED)], []) == []
    assert await b.queued_by_priority() == {2: 2}
    retried = moved(await b.get(low.id), TaskState.PENDING)  # type: ignore[arg-type]
    assert list(await b.commit([retried], [])) == []
    assert await a.queued_by_priority() == {2: 2, 0: 1}


async def test_purge_removes_the_oldest_finished_first(pair) -> None:
    a, b = pair
    numbers = iter(await a.reserve_numbers())
    records = [task(next(numbers), key=f"key-{n}") for n in range(5)]
    await submit(a, *records)
    claimed = {record.id: record for record in await a.claim(5, 0.0)}
    for age, record in zip([50, 40, 30, 20], records, strict=False):
        done = moved(claimed[record.id], TaskState.COMPLETED)
        done.finished_at = 1000.0 - age
        assert await a.commit([done], []) == []
    assert await b.purge(975.0, 2) == {("echo", TaskState.COMPLETED): 2}
    assert [await b.get(r.id) is None for r in records] == [True, True, False, False, False]
    assert await b.purge(1000.0, 10) == {("echo", TaskState.COMPLETED): 2}
    assert await b.get(records[4].id) is not None
    assert await b.find_key("key-0") is None
    assert await b.counts() == {("echo", TaskState.PENDING): 1}


async def test_listing_is_newest_first_with_filters_and_a_cursor(pair) -> None:
    a, b = pair
    numbers = iter(await a.reserve_numbers())
    records = [
        task(next(numbers), type="even" if n % 2 == 0 else "odd", owner=f"user-{n % 3}")
        for n in range(12)
    ]
    await submit(a, *records[:6])
    await submit(b, *records[6:])
    claimed = await a.claim(12, 0.0)
    for record in claimed[:4]:
        await a.commit([moved(record, TaskState.COMPLETED)], [])
    done = {record.id for record in claimed[:4]}

    async def ids(**query: Any) -> list[int]:
        options = {"state": None, "type": None, "limit": 100, "before": None, **query}
        return [record.number - records[0].number for record in await b.query(**options)]

    assert await ids() == list(range(11, -1, -1))
    assert await ids(limit=3) == [11, 10, 9]
    assert await ids(limit=3, before=records[9].number) == [8, 7, 6]
    assert await ids(type="even") == [10, 8, 6, 4, 2, 0]
    assert await ids(owner="user-1", before=records[10].number) == [7, 4, 1]
    assert await ids(type="odd", owner="user-0", limit=1) == [9]
    completed = await ids(state=TaskState.COMPLETED)
    assert {records[0].number + n for n in completed} == {r.number for r in records if r.id in done}
    assert await ids(state=TaskState.RUNNING) == []


async def test_an_idempotency_key_belongs_to_one_task(pair) -> None:
    a, b = pair
    numbers = iter(await a.reserve_numbers())
    first, rival = task(next(numbers), key="once"), task(next(numbers), key="once")
    await submit(a, first)
    assert list(await b.commit([rival], [])) == [rival.id]
    found = await b.find_key("once")
    assert found is not None
    assert found.id == first.id
    assert await b.get(rival.id) is None
    assert (await b.get_by_number(first.number)).id == first.id  # type: ignore[union-attr]
    assert await b.get_by_number(rival.number) is None


@pytest.mark.parametrize("kind", ["postgres", "redis"])
async def test_two_live_nodes_cannot_share_a_name(kind, request) -> None:
    from oncue.actors import NodeNameInUse

    if kind == "postgres":
        url, drop = request.getfixturevalue("postgres_store"), lambda: None
    else:
        url, drop = fresh_store(kind)
    request.addfinalizer(drop)

    def named(name: str) -> Any:
        backend = open_backend(url)
        backend.attach(name, lease_for)  # type: ignore[attr-defined]
        return backend

    first = named("twin")
    await first.open()
    try:
        with pytest.raises(NodeNameInUse, match="'twin' is in use by a live engine"):
            await named("twin").open()
        other = named("other")  # another name is fine
        await other.open()
        await other.close()
    finally:
        await first.close()
    again = named("twin")
    await again.open()  # free again once the first is closed
    await again.close()
