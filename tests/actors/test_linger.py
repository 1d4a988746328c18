"""The scheduler's linger: a trickle of ready tasks is held back for company, then goes out in
one batch; a task after a quiet spell goes out at once (the core, then the engine)."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from test_scheduler_core import job, make_core

from oncue.actors import Registry, TaskContext, TaskState, open_engine
from oncue.actors.cores.linger import DURABLE_LINGER, LINGER_BATCH
from oncue.actors.cores.scheduler_core import SchedulerCore
from oncue.actors.engine.scheduler import Scheduler, default_linger
from oncue.actors.messages import TasksReady

LINGER = 0.001


def idle(core: SchedulerCore[str], *workers: str) -> None:
    for worker in workers:
        assert core.request_work(worker, f"ask-{worker}", [], fresh=False)


def handed(core: SchedulerCore[str]) -> list[tuple[str, list[str]]]:
    """What the last turns handed out: (waiter, task ids) each."""
    replies, core.outbox.replies = core.outbox.replies, []
    return [(waiter, [each.id for each in jobs or []]) for waiter, jobs in replies]


def warmed(**options: Any) -> tuple[SchedulerCore[str], Any]:
    """A core whose task type "t" is known to be short (so a batch may hold many)."""
    core, clocks = make_core(**options)
    core.durations.measure("t", 0.0, 0.00001)
    return core, clocks


def test_a_task_after_a_quiet_spell_goes_out_at_once() -> None:
    core, _ = warmed(linger=LINGER)
    idle(core, "w1", "w2")
    core.tasks_ready([job("a")])
    core.turn()
    assert handed(core) == [("ask-w1", ["a"])]
    assert not core.linger.active


def test_a_trickle_is_held_for_company_then_goes_to_one_worker() -> None:
    core, clocks = warmed(linger=LINGER)
    idle(core, "w1", "w2", "w3")
    core.tasks_ready([job("a")])
    core.turn()  # a quiet spell before it: out at once
    assert handed(core) == [("ask-w1", ["a"])]
    for name in ("b", "c", "d"):  # each within the linger of the last dispatch: held
        clocks.now += LINGER / 10
        core.tasks_ready([job(name)])
        core.turn()
        assert handed(core) == []
        assert core.linger.active
    assert core.linger.until == pytest.approx(LINGER / 10 + LINGER)
    clocks.now = core.linger.until
    core.turn()
    assert handed(core) == [("ask-w2", ["b", "c", "d"])]  # one worker, one wake: not spread
    assert not core.linger.active


def test_a_full_batch_ends_the_linger_at_once() -> None:
    core, _ = warmed(linger=LINGER)
    idle(core, "w1", "w2")
    core.tasks_ready([job("first")])
    core.turn()
    handed(core)
    names = [f"t{number}" for number in range(LINGER_BATCH)]
    for name in names[:-1]:
        core.tasks_ready([job(name)])
        core.turn()
    assert handed(core) == []
    core.tasks_ready([job(names[-1])])
    core.turn()  # no time passed
    assert handed(core) == [("ask-w2", names)]


@pytest.mark.parametrize("why", ["no linger", "no idle worker", "paused"])
def test_no_linger_when_it_cannot_help(why: str) -> None:
    core, _ = warmed(linger=0.0 if why == "no linger" else LINGER)
    idle(core, "w1")
    core.tasks_ready([job("a")])
    core.turn()
    handed(core)
    if why == "paused":
        core.set_paused(True)
    if why != "no idle worker":
        idle(core, "w2", "w3")
    core.tasks_ready([job("b"), job("c")])
    core.turn()
    assert not core.linger.active
    if why == "no linger":  # as before: spread over the idle workers, their fair share each
        assert handed(core) == [("ask-w2", ["b"]), ("ask-w3", ["c"])]


# -- the engine ----------------------------------------------------------------------------------

registry = Registry()
began: dict[int, float] = {}  # x -> the scheduler's clock when its task began


@registry.task("noop", timeout=60)
async def noop(ctx: TaskContext, x: Any) -> Any:
    began[x] = trio.current_time()
    return x


async def test_awaited_submits_in_a_row_run_in_batches_within_the_linger(
    autojump_clock: trio.testing.MockClock,
) -> None:
    submitted = {}
    async with open_engine(registry=registry, workers=4, linger=LINGER) as engine:
        tasks = []
        for number in range(10):
            submitted[number] = trio.current_time()
            tasks.append(await engine.submit("noop", number))
        done = await engine.wait_many([task.id for task in tasks])
    assert [task.result for task in done] == list(range(10))
    # the first went out at once; the rest gathered, then ran in one worker's batch
    assert len({task.worker for task in done[1:]}) == 1
    assert began[0] == submitted[0]
    assert all(0 < began[x] - submitted[x] <= LINGER for x in range(1, 10))


async def test_no_linger_under_a_mock_clock_unless_asked(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with open_engine(registry=registry, workers=4) as engine:
        tasks = [await engine.submit("noop", number) for number in range(10)]
        await engine.wait_many([task.id for task in tasks])
        assert trio.current_time() == 0  # nothing waited for company: the clock never moved


async def test_a_trickle_reaches_a_lingering_scheduler_as_one_message(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    read = []
    tasks_ready = Scheduler._tasks_ready

    def counted(self: Scheduler, message: TasksReady, envelope: Any) -> None:
        read.append(len(message.jobs))
        tasks_ready(self, message, envelope)

    monkeypatch.setattr(Scheduler, "_tasks_ready", counted)
    async with open_engine(registry=registry, workers=4, linger=LINGER) as engine:
        tasks = [await engine.submit("noop", number) for number in range(10)]
        await engine.wait_many([task.id for task in tasks])
    # the first went out at once; the second began a linger, and the store added the other
    # eight to the TasksReady the scheduler left open: two messages, not ten
    assert read == [1, 1]


async def test_a_task_cancelled_while_held_back_never_runs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    began.clear()
    async with open_engine(registry=registry, workers=2, linger=LINGER) as engine:
        await engine.submit("noop", 100)  # out at once
        held = await engine.submit("noop", 101)  # held back for company
        cancelled = await engine.cancel(held.id)
        after = await engine.submit("noop", 102)
        await engine.wait_many([after.id])
        assert (await engine.get(held.id)).state is TaskState.CANCELLED
    assert cancelled.state is TaskState.CANCELLED
    assert 101 not in began
    assert set(began) == {100, 102}


def test_a_smaller_linger_batch_ends_the_linger_sooner() -> None:
    core, _ = warmed(linger=LINGER, linger_batch=3)
    idle(core, "w1", "w2")
    core.tasks_ready([job("first")])
    core.turn()
    handed(core)
    core.tasks_ready([job("a"), job("b")])
    core.turn()
    assert core.linger.active
    core.tasks_ready([job("c")])
    core.turn()
    assert handed(core) == [("ask-w2", ["a", "b", "c"])]


async def test_a_serial_producer_never_fills_a_small_queue_by_lingering(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # Held back and done-but-unreported tasks count as unfinished: with queue_size 20, a
    # linger gathering 32 would make the 21st awaited submit raise QueueFull.
    async with open_engine(registry=registry, workers=2, queue_size=20, linger=LINGER) as engine:
        tasks = [await engine.submit("noop", number) for number in range(200)]
        done = await engine.wait_many([task.id for task in tasks])
    assert [task.result for task in done] == list(range(200))


async def test_a_shared_store_lingers_too(autojump_clock) -> None:
    """Two engines on one shared store, each lingering: a trickle of awaited submits through
    both runs to the end (the shared simulation runs every other schedule with a linger)."""
    from oncue.actors.backends.shared_memory import SharedMemory, SharedMemoryBackend

    hub = SharedMemory()
    async with (
        open_engine(
            registry=registry, store=SharedMemoryBackend(hub), node="a", linger=LINGER
        ) as a,
        open_engine(
            registry=registry, store=SharedMemoryBackend(hub), node="b", linger=LINGER
        ) as b,
    ):
        tasks = [await (a, b)[number % 2].submit("noop", number) for number in range(60)]
        done = await a.wait_many([task.id for task in tasks])
    assert [task.result for task in done] == list(range(60))
    # Lingered: tasks went out together (a batch's tasks share their start), not one by one.
    assert len({task.started_at for task in done}) < len(done)


async def test_the_default_linger_is_longer_on_sqlite_only(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a real clock: DURABLE_LINGER on a durable store of one engine (each batch's start
    and outcome cost commits there), LINGER on the memory store and on shared stores."""
    from oncue.actors.backends.shared_memory import SharedMemory, SharedMemoryBackend
    from oncue.actors.backends.sqlite import SqliteBackend

    lingers: list[float] = []
    init = Scheduler.__init__

    def noted(self: Scheduler, *args: Any, **options: Any) -> None:
        lingers.append(options["linger"])
        init(self, *args, **options)

    monkeypatch.setattr(Scheduler, "__init__", noted)
    stores = [
        "memory://",
        SqliteBackend(tmp_path / "tasks.db"),
        SharedMemoryBackend(SharedMemory()),
    ]
    for store in stores:
        async with open_engine(registry=registry, workers=1, store=store, node="a"):
            pass
    assert lingers == [LINGER, DURABLE_LINGER, LINGER]
    assert default_linger() == default_linger(durable_alone=False) == LINGER
