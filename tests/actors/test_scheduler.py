"""The scheduler: its pure parts (queues, retry decision), and its handlers driven directly."""

from __future__ import annotations

import random

from oncue.actors import Registry, TaskError, register_builtins
from oncue.actors.mailbox import Envelope, Mailbox, _Reply
from oncue.actors.messages import (
    Interrupt,
    Job,
    Outcome,
    RequestWork,
    Requeued,
    Started,
    TaskCancelled,
)
from oncue.actors.queues import Queues, backoff_delay, should_retry
from oncue.actors.registry import RetryPolicy
from oncue.actors.scheduler import Scheduler


def job(task_id: str, priority: int = 1, max_retries: int = 3, attempts: int = 0) -> Job:
    return Job(task_id, "t", None, priority, 5.0, attempts, max_retries, None)


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
    failed = Outcome(job("a"), "error")
    assert should_retry(job("a", max_retries=2), 1, failed)
    assert should_retry(job("a", max_retries=2), 2, failed)
    assert not should_retry(job("a", max_retries=2), 3, failed)
    assert should_retry(job("a", max_retries=-1), 10_000, failed)
    assert not should_retry(job("a", max_retries=0), 1, failed)
    assert not should_retry(job("a"), 1, Outcome(job("a"), "error", fatal=True))


def test_backoff_is_full_jitter_under_the_ceiling() -> None:
    policy = RetryPolicy(base=1.0, cap=30.0)
    rng = random.Random(5)
    delays = [backoff_delay(policy, attempt, rng) for attempt in range(1, 9) for _ in range(50)]
    assert all(0 <= delay <= 30.0 for delay in delays)
    first = [backoff_delay(policy, 1, rng) for _ in range(200)]
    assert max(first) <= 1.0
    assert min(first) < 0.1  # full jitter reaches down to zero, unlike "equal jitter"


def ask(scheduler: Scheduler, message: object) -> _Reply:
    """Hand the scheduler one ask, as its loop would; return the reply slot."""
    reply = _Reply()
    scheduler._handle(Envelope(message, reply, Mailbox("scheduler")))
    return reply


async def test_a_task_cancelled_while_a_worker_holds_it_is_never_run_again() -> None:
    store = Mailbox("store", size=100)
    scheduler = Scheduler(store.ref, register_builtins(Registry()), random.Random(1))
    worker = Mailbox("worker-1")
    a, b = job("a"), job("b")
    scheduler._queues.push(a)
    scheduler._queues.push(b)
    scheduler._durations["t"] = 0.00001  # fast: both go out in one batch
    request = ask(scheduler, RequestWork("worker-1", worker.ref, [], fresh=True))
    scheduler._dispatch()
    assert request.value == [a, b]

    ask(scheduler, TaskCancelled("a"))  # the store has cancelled it; the worker is told
    assert worker.receive_nowait().message == Interrupt("a", "cancelled")
    error = TaskError("RuntimeError", "it failed anyway")
    outcomes = [Outcome(a, "error", 1.0, 2.0, error=error), Outcome(b, "returned")]
    ask(scheduler, RequestWork("worker-1", worker.ref, outcomes, fresh=False))

    assert list(scheduler._queues.queued) == ["b"]  # a is neither retried nor re-queued
    started, requeued = scheduler._changes
    assert isinstance(started, Started)
    assert started.ids == ["a", "b"]  # one Started for the batch
    assert isinstance(requeued, Requeued)
    assert requeued.id == "b"


async def test_work_is_never_handed_to_an_ask_its_worker_gave_up() -> None:
    """A restarted scheduler finds the asks of the workers stopped with it in its mailbox
    (they outlive restarts): handing them work held it for nobody, while the node renewed its
    leases (issue 17 item 4, seen after a Redis restart)."""
    store = Mailbox("store", size=100)
    scheduler = Scheduler(store.ref, register_builtins(Registry()), random.Random(1))
    worker = Mailbox("worker-1")
    stale = ask(scheduler, RequestWork("worker-1", worker.ref, [], fresh=False))
    stale.abandoned = True  # the old worker-1 was cancelled while it asked
    scheduler._queues.push(job("a"))
    scheduler._dispatch()
    assert not stale.done.is_set()
    assert list(scheduler._queues.queued) == ["a"]  # still queued for a live worker
    live = ask(scheduler, RequestWork("worker-1", worker.ref, [], fresh=True))
    scheduler._dispatch()
    assert live.value == [job("a")]


async def test_a_fresh_ask_voids_the_old_incarnation_s_pending_ask() -> None:
    store = Mailbox("store", size=100)
    scheduler = Scheduler(store.ref, register_builtins(Registry()), random.Random(1))
    worker = Mailbox("worker-1")
    old = ask(scheduler, RequestWork("worker-1", worker.ref, [], fresh=False))
    new = ask(scheduler, RequestWork("worker-1", worker.ref, [], fresh=True))
    scheduler._queues.push(job("a"))
    scheduler._dispatch()
    assert not old.done.is_set()
    assert new.value == [job("a")]
