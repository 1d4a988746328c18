"""The scheduler's core against a small model, under random submits, reports, crashes and time.

Hypothesis drives the core (no trio) through what its actor would feed it: tasks made ready,
workers asking with what their batch did, workers restarting or leaving, cancels, pause,
drain, the clock moving. After each step the model checks what the core decided:

- priorities: work goes out best priority first, and nothing ready waits behind a worse task;
  no worker waits while a task is ready (unless paused or draining);
- holdings: a task is held by one worker at most, never both held and queued;
- settlement: every dispatch is settled exactly once (completed, failed, retrying or back to
  pending) unless the task was cancelled, a task ends (completed or failed) at most once and
  nothing follows; the transitions are the ones the retry policy says, in order;
- retries are bounded by max_retries, and the attempts a job carries are the model's count.
"""

from __future__ import annotations

import functools
import math
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from oncue.actors.cores.scheduler_core import SchedulerCore
from oncue.actors.messages import (
    Completed,
    Failed,
    Interrupt,
    Job,
    JobCancelled,
    JobFailed,
    JobInterrupted,
    JobReturned,
    JobSucceeded,
    JobTimedOut,
    Outcome,
    Requeued,
    Retrying,
    Started,
)
from oncue.actors.registry import RetryPolicy
from oncue.actors.task import TaskError

WORKERS = ("w1", "w2", "w3")
CAP = 4.0  # the retry policy's longest backoff
EPSILON = 1e-9  # timers within this of now may or may not have fired (float rounding)
ERROR = TaskError("RuntimeError", "boom")
TASK = {  # a task's options: priority, max_retries, delay, fast (expected to take 10 us)
    "priority": st.sampled_from([0, 1, 2, 5]),
    "max_retries": st.sampled_from([0, 1, 2, -1]),
    "delay": st.sampled_from([0.0, 0.0, 0.5, 3.0]),
    "fast": st.booleans(),
}
KINDS = ("succeeded", "failed", "fatal", "timed out", "retry in 1s", "interrupted", "returned")


@attrs.define
class Task:
    job: Job  # as the model expects it next dispatched (its attempts)
    state: str  # queued, held, done, cancelled, parked (back to pending while draining)
    ready_at: float
    holder: str | None = None
    dispatched: bool = False  # a Started not yet settled
    ended: int = 0  # Completed or Failed seen
    retries: int = 0


@attrs.define
class Worker:
    batch: list[Job] = attrs.field(factory=list)
    waiting: str | None = None  # the ask the core has not answered
    fresh: bool = True  # its next ask is a new incarnation's first


def checked(step: Callable[..., None]) -> Callable[..., None]:
    """A step whose checks (its last act is ``step()``) must pass before teardown's may run:
    a second error from teardown would make hypothesis call the failure flaky."""

    @functools.wraps(step)
    def wrapper(self: SchedulerModel, *args: Any, **kwargs: Any) -> None:
        self.broken = True  # step() clears it once every check passed
        step(self, *args, **kwargs)

    return wrapper


class SchedulerModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = 0.0
        self.core = self.new_core()
        self.tasks: dict[str, Task] = {}
        self.workers = {name: Worker() for name in WORKERS}
        self.expected: list[tuple[Any, ...]] = []  # transitions the next step must record
        self.interrupts: list[tuple[str, Interrupt]] = []
        self.asks = 0
        self.paused = False
        self.draining = False
        self.broken = False  # a check failed: teardown must not add an error of its own

    def new_core(self) -> SchedulerCore[str]:
        return SchedulerCore(
            clock=lambda: self.now,
            wall=lambda: self.now,  # one clock: a retry's run_at is its timer's deadline
            policy=lambda task_type: RetryPolicy(base=1.0, cap=CAP),
            rng=random.Random(0),
        )

    # -- what the actor would feed the core --------------------------------------------------------

    @initialize(tasks=st.lists(st.tuples(*TASK.values()), min_size=1, max_size=8))
    @checked
    def begin(self, tasks: list[tuple[int, int, float, bool]]) -> None:
        """Some tasks, and every worker asking: the rules then start from a busy engine."""
        for task in tasks:
            self.submit(*task)
        for name in WORKERS:
            self.report_and_ask(name, [])

    @rule(**TASK)
    @checked
    def submit(self, priority: int, max_retries: int, delay: float, fast: bool) -> None:
        task_id = f"t{len(self.tasks)}"
        run_at = self.now + delay if delay else None
        job = Job(task_id, "fast" if fast else "slow", None, priority, 5.0, 0, max_retries, run_at)
        self.tasks[task_id] = Task(job, "queued", self.now + delay)
        self.core.tasks_ready([job])
        self.step()

    @precondition(lambda self: any(w.waiting is None for w in self.workers.values()))
    @rule(data=st.data())
    @checked
    def ask(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from([n for n, w in self.workers.items() if w.waiting is None]))
        self.report_and_ask(name, [self.outcome(data, j, name) for j in self.workers[name].batch])

    @precondition(lambda self: any(w.batch for w in self.workers.values()))
    @rule(data=st.data())
    @checked
    def crash(self, data: st.DataObject) -> None:
        """A worker restarts while it runs a batch: its fresh ask re-queues what it held."""
        name = data.draw(st.sampled_from([n for n, w in self.workers.items() if w.batch]))
        self.lose(name, started=True)
        self.asks += 1
        token = f"{name}#{self.asks}"
        deferred = self.core.request_work(name, token, [], fresh=True)
        self.workers[name] = Worker(waiting=token if deferred else None, fresh=False)
        self.step()

    @rule(data=st.data(), name=st.sampled_from(WORKERS))
    @checked
    def stop(self, data: st.DataObject, name: str) -> None:
        """A worker leaves for good after part of its batch; it may come back, fresh."""
        worker = self.workers[name]
        done = data.draw(st.integers(0, len(worker.batch)))
        outcomes = [self.outcome(data, job, name) for job in worker.batch[:done]]
        for outcome in outcomes:
            self.settle(name, outcome)
        self.lose(name, started=False)
        self.core.worker_stopped(name, outcomes)
        self.workers[name] = Worker()  # an unanswered ask is dropped with the worker
        self.step()

    @precondition(lambda self: any(t.state in ("queued", "held") for t in self.tasks.values()))
    @rule(data=st.data())
    @checked
    def cancel(self, data: st.DataObject) -> None:
        live = [i for i, t in self.tasks.items() if t.state in ("queued", "held")]
        task = self.tasks[data.draw(st.sampled_from(live))]
        if task.state == "held":
            assert task.holder is not None
            self.interrupts.append((task.holder, Interrupt(task.job.id, "cancelled")))
            task.dispatched = False  # whatever its worker reports is ignored
        task.state = "cancelled"
        self.core.task_cancelled(task.job.id)
        self.step()

    @precondition(lambda self: not self.draining)
    @rule()
    @checked
    def restart(self) -> None:
        """The scheduler restarts, and the workers after it: a new core loads the unfinished
        tasks from the store, which counts the attempt of those that were running."""
        self.core, self.paused = self.new_core(), False
        self.workers = {name: Worker() for name in WORKERS}
        loaded = []
        for task in self.tasks.values():
            if task.state not in ("queued", "held"):
                task.holder = None  # a cancelled task the old core held: not loaded
                continue
            running = task.state == "held"
            if running:
                job = task.job = task.job._replace(attempts=task.job.attempts + 1)
                task.holder, task.ready_at = None, self.now
                if job.max_retries != -1 and job.attempts > job.max_retries + 1:
                    self.end(task, Failed)  # its node died on each attempt: a poison task
                    loaded.append((job, running))
                    continue
                task.state = "queued"
                self.expected.append((Requeued, task.job.id, True))
            run_at = task.ready_at if task.ready_at > self.now else None
            loaded.append((task.job._replace(run_at=run_at), running))
        self.core.recover(loaded)
        self.step()

    @rule(seconds=st.sampled_from([0.001, 0.3, 1.0, 5.0]))
    @checked
    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.step()

    @rule()
    @checked
    def toggle_pause(self) -> None:
        self.paused = not self.paused
        self.core.set_paused(self.paused)
        self.step()

    @precondition(lambda self: not self.draining)
    @rule(interrupt=st.booleans())
    @checked
    def drain(self, interrupt: bool) -> None:
        holders = [t.holder for t in self.tasks.values() if t.holder is not None]
        assert self.core.drain(interrupt=interrupt) == len(holders)
        if interrupt:
            self.interrupts += [(w, Interrupt(None, "shutdown")) for w in sorted(set(holders))]
        self.draining = True  # the idle workers' asks are answered None
        self.step()

    def report_and_ask(self, name: str, outcomes: list[Outcome]) -> None:
        """``name`` reports how its batch went and asks for more."""
        worker = self.workers[name]
        assert not (worker.fresh and worker.batch)
        for outcome in outcomes:
            self.settle(name, outcome)
        self.asks += 1
        token = f"{name}#{self.asks}"
        deferred = self.core.request_work(name, token, outcomes, fresh=worker.fresh)
        assert deferred is not self.draining
        self.workers[name] = Worker(waiting=token if deferred else None, fresh=False)
        self.step()

    # -- the model ---------------------------------------------------------------------------------

    def outcome(self, data: st.DataObject, job: Job, worker: str) -> Outcome:
        """What running ``job`` did, as its worker reports it."""
        if self.tasks[job.id].state == "cancelled" and data.draw(st.booleans()):
            return JobCancelled(job, self.now)
        kind = data.draw(st.sampled_from(KINDS))
        took = 0.00001 if job.type == "fast" else 0.1
        if kind == "succeeded":
            return JobSucceeded(job, self.now - took, self.now, job.id)
        if kind in ("failed", "fatal", "retry in 1s"):
            delay = 1.0 if kind == "retry in 1s" else None
            return JobFailed(job, self.now - took, self.now, ERROR, kind == "fatal", delay)
        if kind == "timed out":
            return JobTimedOut(job, self.now, ERROR)
        return JobInterrupted(job, self.now) if kind == "interrupted" else JobReturned(job)

    def settle(self, worker: str, outcome: Outcome) -> None:
        """What the model expects the core to record for ``outcome``."""
        task = self.tasks[outcome.job.id]
        assert task.holder == worker
        task.holder = None
        if task.state == "cancelled":
            return
        job = task.job
        if isinstance(outcome, JobSucceeded):
            self.end(task, Completed)
        elif isinstance(outcome, JobInterrupted | JobReturned):
            self.requeue(task, started=isinstance(outcome, JobInterrupted))
        elif isinstance(outcome, JobFailed) and outcome.fatal:
            self.end(task, Failed)
        elif job.max_retries == -1 or job.attempts + 1 <= job.max_retries:
            task.job = job._replace(attempts=job.attempts + 1)
            task.state, task.ready_at = "queued", math.inf  # until the Retrying's run_at
            self.expected.append((Retrying, job.id))
        else:
            self.end(task, Failed)

    def end(self, task: Task, kind: type) -> None:
        task.state = "done"
        self.expected.append((kind, task.job.id))

    def requeue(self, task: Task, *, started: bool) -> None:
        task.holder = None
        task.job = task.job._replace(attempts=task.job.attempts + started)
        task.state, task.ready_at = ("parked" if self.draining else "queued"), self.now
        self.expected.append((Requeued, task.job.id, started))

    def lose(self, worker: str, *, started: bool) -> None:
        """``worker`` is gone: what it held (and was not cancelled) goes back to pending."""
        for job in self.workers[worker].batch:
            task = self.tasks[job.id]
            if task.holder == worker:
                if task.state == "cancelled":
                    task.holder = None
                else:
                    self.requeue(task, started=started)

    def ready(self, task: Task, *, surely: bool) -> bool:
        if task.state != "queued":
            return False
        return task.ready_at < self.now - EPSILON if surely else task.ready_at <= self.now + EPSILON

    # -- checking a step ---------------------------------------------------------------------------

    def step(self) -> None:
        """Run the core's turn as the actor would; check what it decided."""
        self.broken = True  # until every check passed
        core = self.core
        core.turn()
        replies, core.outbox.replies = core.outbox.replies, []
        assert sorted(map(repr, core.outbox.interrupts)) == sorted(map(repr, self.interrupts))
        core.outbox.interrupts, self.interrupts = [], []
        core.outbox.to_store.clear()
        dispatched = [job for token, jobs in replies for job in self.hand_out(token, jobs)]
        self.check_changes(core.take_changes(force=True) or [])
        priorities = [job.priority for job in dispatched]
        assert priorities == sorted(priorities, reverse=True)
        left = [t.job.priority for t in self.tasks.values() if self.ready(t, surely=True)]
        if dispatched and left:
            assert max(left) <= min(priorities)
        if left and not (self.paused or self.draining):
            assert all(w.waiting is None for w in self.workers.values())
        self.broken = False

    def hand_out(self, token: str, jobs: list[Job] | None) -> list[Job]:
        name = token.split("#")[0]
        worker = self.workers[name]
        assert worker.waiting == token, f"{token} answered, not waiting"
        worker.waiting = None
        if jobs is None:
            assert self.draining
            return []
        assert not self.paused
        assert not self.draining
        for job in jobs:
            task = self.tasks[job.id]
            assert self.ready(task, surely=False), f"{job.id} handed out while {task.state}"
            assert task.holder is None
            assert job.attempts == task.job.attempts
            task.state, task.holder = "held", name
        worker.batch = jobs
        self.expected.append((Started, tuple(job.id for job in jobs), name))
        return jobs

    def check_changes(self, changes: list[Any]) -> None:
        seen: list[tuple[Any, ...]] = []
        for change in changes:
            if isinstance(change, Started):
                seen.append((Started, tuple(change.ids), change.worker))
                for task_id in change.ids:
                    assert not self.tasks[task_id].dispatched
                    self.tasks[task_id].dispatched = True
                continue
            task = self.tasks[change.id]
            assert task.dispatched, f"{change} for a task not dispatched"
            task.dispatched = False
            if isinstance(change, Requeued):
                seen.append((Requeued, change.id, change.started))
            else:
                seen.append((type(change), change.id))
            if isinstance(change, Retrying):
                task.retries += 1
                task.ready_at = change.run_at
                assert 0 <= change.run_at - change.at <= CAP
            if isinstance(change, Completed | Failed):
                task.ended += 1
        assert seen == self.expected
        self.expected = []

    @invariant()
    def holdings_match_the_model(self) -> None:
        self.broken = True
        holder = self.core.holdings.holder
        assert holder == {i: t.holder for i, t in self.tasks.items() if t.holder is not None}
        held_twice = Counter(i for jobs in self.core.holdings.by_worker.values() for i in jobs)
        assert all(count == 1 for count in held_twice.values())
        assert not set(holder) & set(self.core.queues.queued)
        self.broken = False

    @invariant()
    def retries_are_bounded_and_ends_unique(self) -> None:
        self.broken = True
        for task in self.tasks.values():
            assert task.ended <= 1
            if task.job.max_retries >= 0:
                assert task.retries <= task.job.max_retries
        self.broken = False

    def teardown(self) -> None:
        """Let every worker finish what it holds, then run the rest: every task dispatched
        was settled, and every task not cancelled (nor parked by a drain) ended once."""
        if self.broken:
            return
        if self.paused:
            self.toggle_pause()
        for _ in range(100):
            for name, worker in self.workers.items():
                if worker.batch or worker.waiting is None:
                    done = [JobSucceeded(job, self.now, self.now, None) for job in worker.batch]
                    self.report_and_ask(name, done)
            if not any(w.batch for w in self.workers.values()) and (
                self.draining or not any(t.state == "queued" for t in self.tasks.values())
            ):
                break
            self.advance(CAP + 1)  # retries and delayed tasks come due
        assert not any(t.dispatched or t.holder for t in self.tasks.values())
        for task in self.tasks.values():
            if task.state not in ("cancelled", "parked", "queued"):
                assert task.ended == 1, task
            if not self.draining:
                assert task.state in ("cancelled", "done"), task


SchedulerModel.TestCase.settings = settings(max_examples=300, stateful_step_count=30, deadline=None)
# a failure is shrunk to a short story, which takes longer than pytest-timeout's default
test_the_scheduler_core_follows_the_model = pytest.mark.timeout(600)(SchedulerModel.TestCase)
