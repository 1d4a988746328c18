"""The worker's own rules: which interrupt cancels which hand-out of a task.

An interrupt heard before a job's turn (while the worker asks, or runs the batch's earlier
jobs) is kept for that job; it names the hand-out it is about (the Job the scheduler handed
out), so a later hand-out of the same task (a shared store's claim brings it back) runs."""

from __future__ import annotations

import trio

from oncue.actors import Registry, TaskContext
from oncue.actors.engine.worker import Worker
from oncue.actors.messages import Interrupt, Job, JobCancelled, JobSucceeded
from oncue.actors.runtime.mailbox import Mailbox

registry = Registry()
ran: list[int] = []


@registry.task("t")
async def record(ctx: TaskContext, x: int) -> int:
    ran.append(x)
    return x


def worker() -> Worker:
    ran.clear()
    return Worker("w", Mailbox("s").ref, Mailbox("st").ref, registry, trio.CapacityLimiter(1))


def hand_out(x: int, attempts: int = 0) -> Job:
    return Job("a", "t", x, 0, 5.0, attempts, 3, None)


async def run(subject: Worker, jobs: list[Job]) -> list[type]:
    subject._batch, subject._index = jobs, 0
    with trio.CancelScope() as scope:
        await subject._run_in_scope(scope)
    return [type(outcome) for outcome in subject._outcomes]


async def test_an_interrupt_heard_before_its_turn_skips_that_hand_out() -> None:
    subject = worker()
    first = hand_out(1)
    subject._on_interrupt(Interrupt("a", "cancelled", first))  # heard while asking
    assert await run(subject, [first]) == [JobCancelled]
    assert ran == []


async def test_a_later_hand_out_of_the_same_task_runs() -> None:
    """The interrupt was about the first hand-out (it ended); the task came back."""
    subject = worker()
    subject._on_interrupt(Interrupt("a", "cancelled", hand_out(1)))
    assert await run(subject, [hand_out(2, attempts=1)]) == [JobSucceeded]
    assert ran == [2]


async def test_an_interrupt_naming_no_hand_out_skips_whichever_comes() -> None:
    subject = worker()
    subject._on_interrupt(Interrupt("a", "cancelled"))
    assert await run(subject, [hand_out(3)]) == [JobCancelled]
