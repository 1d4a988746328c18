"""The scheduler's queues: the ready and timer heaps, and the retry arithmetic."""

from __future__ import annotations

import itertools
import random
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from oncue.actors.cores.queues import SHRINK_ABOVE, Queues, backoff_delay, should_retry
from oncue.actors.messages import Job
from oncue.actors.registry import RetryPolicy


def job(
    task_id: str, priority: int = 1, max_retries: int = 3, attempts: int = 0, kind: str = "t"
) -> Job:
    return Job(task_id, kind, None, priority, 5.0, attempts, max_retries, None)


def drain(queues: Queues) -> list[str]:
    popped = []
    while queues.peek() is not None:
        popped.append(queues.pop().id)
    return popped


def test_ready_jobs_pop_by_priority_then_arrival() -> None:
    queues = Queues()
    for task_id, priority in [("a", 1), ("b", 3), ("c", 1), ("d", 0), ("e", 3)]:
        queues.push(job(task_id, priority))
    assert drain(queues) == ["b", "e", "a", "c", "d"]


def test_removed_jobs_are_skipped_lazily() -> None:
    queues = Queues()
    for task_id in "abc":
        queues.push(job(task_id))
    assert queues.remove("b")
    assert not queues.remove("b")
    assert drain(queues) == ["a", "c"]
    assert queues.queued == {}


def test_timers_release_in_deadline_order_when_due() -> None:
    queues = Queues()
    queues.push(job("late"), deadline=20.0)
    queues.push(job("soon"), deadline=5.0)
    assert queues.next_deadline() == 5.0
    queues.release_due(4.9)
    assert queues.peek() is None
    queues.release_due(5.0)
    assert drain(queues) == ["soon"]
    assert queues.next_deadline() == 20.0
    queues.release_due(100.0)
    assert drain(queues) == ["late"]
    assert queues.next_deadline() == float("inf")


def test_a_removed_timer_neither_fires_nor_holds_the_deadline() -> None:
    queues = Queues()
    queues.push(job("cancelled"), deadline=1.0)
    queues.push(job("kept"), deadline=2.0)
    queues.remove("cancelled")
    assert queues.next_deadline() == 2.0
    queues.release_due(10.0)
    assert drain(queues) == ["kept"]


def test_a_requeued_job_replaces_its_stale_heap_entry() -> None:
    queues = Queues()
    first = job("a", priority=0)
    queues.push(first)
    queues.remove("a")
    queues.push(job("a", priority=5))
    queues.push(job("b", priority=1))
    assert [queues.pop().priority for _ in range(2)] == [5, 1]
    assert queues.peek() is None


def test_retry_decision_counts_attempts_against_max_retries() -> None:
    assert should_retry(job("a", max_retries=2), 1, fatal=False)
    assert should_retry(job("a", max_retries=2), 2, fatal=False)
    assert not should_retry(job("a", max_retries=2), 3, fatal=False)
    assert should_retry(job("a", max_retries=-1), 10_000, fatal=False)
    assert not should_retry(job("a", max_retries=0), 1, fatal=False)
    assert not should_retry(job("a"), 1, fatal=True)


def test_backoff_is_full_jitter_under_the_ceiling() -> None:
    policy = RetryPolicy(base=1.0, cap=30.0)
    rng = random.Random(5)
    delays = [backoff_delay(policy, attempt, rng) for attempt in range(1, 9) for _ in range(50)]
    assert all(0 <= delay <= 30.0 for delay in delays)
    first = [backoff_delay(policy, 1, rng) for _ in range(200)]
    assert max(first) <= 1.0
    assert min(first) < 0.1  # full jitter reaches down to zero, unlike "equal jitter"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(
                ["push", "push", "push", "many", "timer", "remove", "pop", "run", "release"]
            ),
            st.integers(0, 7),  # which job (its type: "a" if even, else "b")
            st.integers(-2, 2),  # its priority (few: many share one); a run's limit
        ),
        max_size=60,
    )
)
def test_the_ready_queue_pops_as_a_plain_heap_would(steps) -> None:
    """Against a model: a heap of (-priority, arrival) over the jobs still queued. ``many``
    pushes a few jobs with push_ready (one already queued among them is skipped), ``run``
    takes with pop_run what peek()/pop() would give while the type and priority hold."""
    queues = Queues()
    model: dict[str, tuple[int, int]] = {}  # id -> (-priority, arrival) of the ready ones
    timed: dict[str, int] = {}  # id -> priority, waiting for a timer
    arrival = itertools.count()

    def kind(task_id: str) -> str:
        return "a" if int(task_id[1:]) % 2 == 0 else "b"

    for action, number, priority in steps:
        task_id = f"j{number}"
        if action == "many":
            batch = [f"j{(number + step) % 8}" for step in range(3)]
            fresh = [one for one in dict.fromkeys(batch) if one not in model and one not in timed]
            queues.push_ready([job(one, priority, kind=kind(one)) for one in batch])
            for one in fresh:
                model[one] = (-priority, next(arrival))
        elif action == "run" and model:
            order = sorted(model, key=model.__getitem__)
            want, front = kind(order[0]), model[order[0]][0]
            expected_run = []
            for one in order[: max(priority, 0)]:
                if kind(one) != want or model[one][0] != front:
                    break
                expected_run.append(one)
            assert [taken.id for taken in queues.pop_run(priority, want)] == expected_run
            for one in expected_run:
                del model[one]
        elif action in ("push", "timer") and task_id not in model and task_id not in timed:
            if action == "push":
                queues.push(job(task_id, priority, kind=kind(task_id)))
                model[task_id] = (-priority, next(arrival))
            else:
                queues.push(job(task_id, priority, kind=kind(task_id)), deadline=1.0)
                timed[task_id] = priority
        elif action == "remove":
            assert queues.remove(task_id) == (task_id in model or task_id in timed)
            model.pop(task_id, None)
            timed.pop(task_id, None)
        elif action == "release":
            queues.release_due(1.0)
            for released, released_priority in timed.items():  # in push order, as the heap
                model[released] = (-released_priority, next(arrival))
            timed.clear()
        elif action == "pop":
            expected = min(model, key=model.__getitem__, default=None)
            top = queues.peek()
            assert (top.id if top else None) == expected
            if top is not None:
                assert queues.pop().id == expected
                del model[expected]
        assert queues.ready_count() >= len(model)
    assert drain(queues) == sorted(model, key=model.__getitem__)


def test_the_queued_index_is_rebuilt_once_a_drain_leaves_it_far_below_its_peak() -> None:
    # A dict never shrinks its table: a drained backlog of a million would keep ~40 MB.
    queues = Queues()
    count = 4 * SHRINK_ABOVE
    for number in range(count):
        queues.push(job(f"t{number}"))
    grown = queues.queued
    peak_size = sys.getsizeof(grown)
    popped = [queues.pop().id for _ in range(count - 10) if queues.peek() is not None]
    assert queues.queued is not grown
    assert sys.getsizeof(queues.queued) < peak_size / 2
    assert popped == [f"t{number}" for number in range(count - 10)]
    assert drain(queues) == [f"t{number}" for number in range(count - 10, count)]
