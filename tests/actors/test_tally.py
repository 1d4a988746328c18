"""The engine's tally (tally.py): transitions and run times counted as the store moves tasks."""

from __future__ import annotations

import bisect

from hypothesis import given
from hypothesis import strategies as st
from simulation import Disk, FaultyBackend
from test_outages import submit_through_outages, wait_through_outages
from test_store_core import new

from oncue.actors import open_engine
from oncue.actors.cores.ownership import LocalOwnership
from oncue.actors.cores.store_core import StoreCore
from oncue.actors.cores.tally import RUN_TIME_BOUNDS, Counting
from oncue.actors.messages import Completed, Failed, Requeued, Retrying, Started
from oncue.actors.task import TaskError, TaskState

ERROR = TaskError("Boom", "boom")
seconds = st.floats(min_value=-1.0, max_value=1e6, allow_nan=False)


@given(st.lists(st.tuples(st.sampled_from(["a", "b"]), seconds)), st.integers(0, 50))
def test_absorbing_batches_counts_as_counting_all_at_once(values, split) -> None:
    """The store counts a batch apart and adds it once committed: the same totals."""
    whole, total, batch = Counting(), Counting(), Counting()
    for index, (task_type, value) in enumerate(values):
        whole.run_times.add(task_type, value)
        whole.moved(task_type, TaskState.COMPLETED)
        batch.run_times.add(task_type, value)
        batch.moved(task_type, TaskState.COMPLETED)
        if index % (split + 1) == 0:
            total.absorb(batch)
    total.absorb(batch)
    assert batch.read().transitions == {}
    assert batch.read().run_times == {}
    mine, theirs = total.read(), whole.read()
    assert mine.transitions == theirs.transitions
    for task_type, times in theirs.run_times.items():
        assert mine.run_times[task_type].counts == times.counts
        assert abs(mine.run_times[task_type].total - times.total) <= 1e-6 * (1 + times.total)


@given(st.lists(seconds, min_size=1))
def test_a_run_time_lands_in_the_first_bucket_whose_bound_holds_it(values) -> None:
    counting = Counting()
    for value in values:
        counting.run_times.add("a", value)
    times = counting.read().run_times["a"]
    expected = [0] * (len(RUN_TIME_BOUNDS) + 1)
    for value in values:  # as a Prometheus histogram buckets it: value <= bound
        expected[next((i for i, b in enumerate(RUN_TIME_BOUNDS) if value <= b), -1)] += 1
    assert list(times.counts) == expected
    assert times.count == len(values)
    assert bisect.bisect_left(RUN_TIME_BOUNDS, 0.001) == 0  # a bound itself: its own bucket


def test_the_store_core_counts_each_transition_and_each_attempt_that_ended() -> None:
    core = StoreCore(LocalOwnership(0), 100)
    core.begin(False)
    tasks = [each.task for each in core.submit([new(max_retries=1) for _ in range(5)], {}, 1.0)]
    ids = [task.id for task in tasks]
    core.record([Started(ids, "worker-1", 2.0)])
    core.record(
        [
            Completed(ids[0], 42, 2.5),
            Retrying(ids[1], ERROR, 10.0, 3.0),
            Failed(ids[2], ERROR, 12.0),
            Requeued(ids[3], True, 4.0),  # back in the queue: no attempt ended
        ]
    )
    core.cancel(core.unfinished[ids[4]], 5.0)  # cancelled while running: its attempt ended
    counted = core.counted.read()
    assert counted.transitions == {
        ("echo", TaskState.PENDING): 6,  # five submitted, one requeued
        ("echo", TaskState.COMPLETED): 1,
        ("echo", TaskState.RETRYING): 1,
        ("echo", TaskState.FAILED): 1,
        ("echo", TaskState.CANCELLED): 1,
    }
    times = counted.run_times["echo"]
    assert times.count == 4
    assert times.total == 0.5 + 1.0 + 10.0 + 3.0
    assert times.counts[RUN_TIME_BOUNDS.index(0.5)] == 1
    assert times.counts[RUN_TIME_BOUNDS.index(1.0)] == 1
    assert times.counts[RUN_TIME_BOUNDS.index(5.0)] == 1  # 3 s
    assert times.counts[RUN_TIME_BOUNDS.index(10.0)] == 1


async def test_what_a_failed_commit_did_is_not_counted(autojump_clock, registry) -> None:
    """The store adds a batch's counts once it is committed: with one commit in five failing
    before it writes (and the store reloading after each), every task is counted completed
    once, though some were submitted or run again (created counts re-admissions too)."""
    disk = Disk(faults=[*([None] * 4 + ["before"]) * 20])
    async with open_engine(registry=registry, store=FaultyBackend(disk), workers=4) as engine:
        accepted = await submit_through_outages(engine, 60)
        for task_id in accepted:
            assert (await wait_through_outages(engine, task_id)).state is TaskState.COMPLETED
        tally = await engine.tally()
    assert tally.transitions["double", TaskState.COMPLETED] == 60
    assert tally.run_times["double"].count == 60
    # Pending counts re-admissions too: a reload puts a task that was running back.
    assert tally.transitions["double", TaskState.PENDING] >= 60
    assert ("double", TaskState.RUNNING) not in tally.transitions  # starts are not counted
