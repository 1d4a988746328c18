"""The worker actor: asks the scheduler for work when idle, runs it under cancel scopes.

This is the task boundary: the one place where an exception from task code is caught and
becomes data (an Outcome; failures.py says which). Anything else that goes wrong crashes the
worker, its supervisor restarts it, and the scheduler re-queues what it held.

Timeouts: one cancel scope serves batch after batch (and the asks between them, with no
deadline), its deadline moved for each job, because a fresh ``move_on_after`` per task costs
more than most tasks. When the scope fires, the job that was running is the one that timed out
(or was interrupted), and the rest get a new scope.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import trio

from ..errors import (
    ActorCrashed,
    ActorStopped,
    Fatal,
    MailboxFull,
    NoThreadLeft,
    Retry,
    UnknownTaskType,
)
from ..messages import (
    Interrupt,
    Job,
    JobCancelled,
    JobInterrupted,
    JobReturned,
    JobSucceeded,
    Outcome,
    ProgressReported,
    RequestWork,
    WorkerStopped,
)
from ..registry import Handler, Registry, TaskContext
from ..runtime.actor import Actor, Context
from ..runtime.mailbox import ActorRef, Mailbox
from ..task import tuple_of
from .failures import cut_short, failed, raised_by_task_code
from .tracing import attempt_span, end_attempt

logger = logging.getLogger(__name__)

DEADLINE_SLACK = 0.002  # seconds a timeout may run over, so fast jobs share one deadline


class Worker(Actor):
    def __init__(
        self,
        name: str,
        scheduler: ActorRef,
        store: ActorRef,
        registry: Registry,
        threads: trio.CapacityLimiter,
        node: str | None = None,
        traced: bool = False,
    ) -> None:
        self._name = name
        self._traced = traced  # a span per attempt (tracing.active() when the engine opened)
        self._node = node  # the engine's name on a shared store, for what handlers log
        self._threads = threads  # shared by the pool; a thread abandoned at timeout keeps one
        self._scheduler = scheduler
        self._store = store
        self._registry = registry
        self._stopped = trio.Event()  # our mailbox closed: finish the batch, then leave
        self._leaving = False  # _stopped is set (a plain flag: read once a job)
        self._asking = False  # waiting for the scheduler's answer: cancelling loses nothing
        self._fresh = True  # our next ask is this incarnation's first
        self._scope: trio.CancelScope | None = None  # for asks and jobs, until cancelled
        self._batch: list[Job] = []
        self._outcomes: list[Outcome] = []
        self._index = 0  # position in the batch of the job running now
        self._interrupt: str | None = None  # why the scope was cancelled, if not a timeout
        self._shutting_down = False  # interrupted for shutdown: run nothing more
        self._skip: dict[str, Job | None] = {}  # interrupted before their turn: the hand-out
        self._crashed = False

    async def run(self, context: Context) -> None:
        context.started()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._listen, context.mailbox)
                await self._work(context.ref)
                nursery.cancel_scope.cancel()
        except Exception:
            self._crashed = True  # the supervisor restarts us; the scheduler sees a fresh ask
            raise
        finally:
            if not self._crashed:
                self._say_goodbye()

    async def _work(self, ref: ActorRef) -> None:
        # One scope serves the asks and the jobs until it is cancelled (a job's timeout, an
        # interrupt, or the listener stopping us while we ask), not one per batch: entering a
        # scope costs more than a fast task. Its deadline is inf while we ask, so only the
        # listener cuts an ask short, and then stopping loses nothing.
        while not self._leaving:
            self._interrupt = None
            with trio.CancelScope() as scope:
                self._scope = scope
                await self._ask_and_run(ref, scope)
            self._scope = None
            if scope.cancelled_caught and self._index < len(self._batch):  # a job was cut short
                self._outcomes.append(
                    cut_short(self._batch[self._index], self._name, self._interrupt)
                )
                self._index += 1

    async def _ask_and_run(self, ref: ActorRef, scope: trio.CancelScope) -> None:
        """Finish the batch, then ask for the next and run it, until ``scope`` is cancelled or
        we are stopped."""
        while True:
            if self._batch:
                await self._run_batch(scope)
                if self._batch:  # the scope was cancelled before the next job
                    return
            if self._leaving or scope.cancel_called:
                return
            scope.deadline = math.inf
            self._asking = True
            try:
                jobs = await self._scheduler.ask(
                    RequestWork(self._name, ref, self._outcomes, self._fresh)
                )
            except ActorCrashed:
                # The scheduler restarts with the queue rebuilt from the store, where what
                # we reported is still running: it re-queues that. Ask afresh.
                logger.warning("worker.scheduler_crashed", extra={"worker": self._name})
                self._outcomes = []
                self._fresh = True
                continue
            finally:
                self._asking = False
            self._outcomes = []  # delivered with the ask
            self._fresh = False
            if jobs is None:  # the engine is draining: idle until we are stopped
                await self._stopped.wait()
                return
            self._batch = jobs
            self._index = 0
            if self._skip:  # interrupts heard while asking: only those for this batch count
                handed = {job.id for job in jobs}
                self._skip = {id_: job for id_, job in self._skip.items() if id_ in handed}

    async def _listen(self, mailbox: Mailbox) -> None:
        async for envelope in mailbox:
            message = envelope.message
            if isinstance(message, Interrupt):
                self._on_interrupt(message)
        self._stopped.set()
        self._leaving = True
        if self._asking and self._scope is not None:
            self._scope.cancel()

    def _on_interrupt(self, message: Interrupt) -> None:
        batch = self._batch
        running = batch[self._index] if self._index < len(batch) else None
        if message.id is None:
            self._shutting_down = True
        elif running is None or running.id != message.id:  # before its turn, or while asking
            self._skip[message.id] = message.job
            return
        elif message.job is not None and message.job is not running:
            return  # about an earlier hand-out of this task, which has ended
        if self._scope is not None and running is not None:  # never cut an ask short here
            self._interrupt = message.reason
            self._scope.cancel()

    def _skips(self, job: Job) -> bool:
        """Whether an interrupt heard before ``job``'s turn was about this hand-out of it."""
        if job.id not in self._skip:
            return False
        meant = self._skip[job.id]
        return meant is None or meant is job

    def _say_goodbye(self) -> None:
        """Tell the scheduler what this batch did, so it re-queues the rest (never blocks)."""
        outcomes = list(self._outcomes)
        batch = self._batch
        if self._index < len(batch):
            outcomes.append(JobInterrupted(batch[self._index]))
            outcomes.extend(JobReturned(job) for job in batch[self._index + 1 :])
        try:
            self._scheduler.try_tell(WorkerStopped(self._name, outcomes))
        except (ActorStopped, MailboxFull):
            logger.warning("worker.goodbye_lost", extra={"worker": self._name})

    # -- running a batch ---------------------------------------------------------------------------

    async def _run_batch(self, scope: trio.CancelScope) -> None:
        """Run the rest of the batch in ``scope``. Returns with the batch unfinished only if
        the scope was cancelled before its next job (the caller goes on in a new scope); when
        stopping, the jobs not run go back to the scheduler."""
        jobs = self._batch
        await self._run_in_scope(scope)
        if self._index < len(jobs):
            if not (self._leaving or self._shutting_down):
                return
            self._outcomes.extend(JobReturned(job) for job in jobs[self._index :])
        self._batch = []
        self._index = 0
        self._skip.clear()

    async def _run_in_scope(self, scope: trio.CancelScope) -> None:
        # The per-job checks use what is at hand rather than trio's properties, each of which
        # reads the clock again (a fast task costs about as much as three reads): the clock
        # once a job, our own copy of the deadline, and ``_interrupt``, set whenever an
        # interrupt cancels the scope. A deadline passed between jobs means the job before
        # overran without a checkpoint: the rest go on in a new scope, as trio would have.
        jobs = self._batch
        outcomes = self._outcomes
        skip = self._skip
        attempt = self._attempt_traced if self._traced else self._attempt_untraced
        clock = trio.lowlevel.current_clock().current_time
        deadline = scope.deadline
        while self._index < len(jobs):
            if self._leaving or self._shutting_down or self._interrupt is not None:
                return
            now = clock()
            if now >= deadline:
                return
            job = jobs[self._index]
            if skip and self._skips(job):
                outcomes.append(JobCancelled(job))
            else:
                # Move the deadline only when it is off by more than DEADLINE_SLACK: moving it
                # costs more than a fast task. A job so gets between timeout and timeout+slack.
                target = now + job.timeout
                if not target <= deadline <= target + DEADLINE_SLACK:
                    deadline = scope.deadline = target + DEADLINE_SLACK / 2
                outcomes.append(await attempt(job))
            self._index += 1

    async def _attempt_traced(self, job: Job) -> Outcome:
        """Run one attempt in a span of its own (tracing on)."""
        with attempt_span(job, self._name, self._node) as span:
            outcome = await self._attempt_untraced(job)
            end_attempt(span, outcome)
            return outcome

    async def _attempt_untraced(self, job: Job) -> Outcome:
        """Run one attempt; the task boundary, where task code's exceptions become data."""
        started = time.time()
        try:
            handler = self._registry.lookup(job.type) or self._registry.get(job.type)
            if handler.run_in == "loop":
                context = TaskContext(
                    job.id,
                    job.type,
                    job.attempts + 1,
                    self._name,
                    self._report,
                    self._node,
                    job.headers,
                )
                result = await handler.call(context, job.payload)
            else:
                result = await self._off_loop(handler, job)
        except Retry as error:
            return failed(job, self._name, started, error, retry_delay=error.delay, expected=True)
        except (Fatal, UnknownTaskType) as error:
            return failed(job, self._name, started, error, fatal=True)
        except Exception as error:
            return failed(job, self._name, started, error)
        except BaseException as error:  # SystemExit, GeneratorExit...: still the task's failure
            if not raised_by_task_code(error):
                raise  # trio's cancellation (a timeout, a stop), or Ctrl-C sent to the process
            return failed(job, self._name, started, error)
        return tuple_of(JobSucceeded, (job, started, time.time(), result))

    async def _off_loop(self, handler: Handler, job: Job) -> Any:
        """A plain function's attempt: in a worker process, or in a thread."""
        if handler.run_in == "process":
            import trio_parallel  # type: ignore[import-untyped]

            return await trio_parallel.run_sync(handler.function, job.payload, kill_on_cancel=True)
        context = TaskContext(
            job.id, job.type, job.attempts + 1, self._name, self._report, self._node, job.headers
        )
        return await self._in_thread(handler, context, job)

    async def _in_thread(self, handler: Handler, context: TaskContext, job: Job) -> Any:
        """Run a sync handler in a thread. On timeout the thread is abandoned: it keeps its
        place in the pool's thread limit until the handler returns by itself."""
        if self._threads.available_tokens == 0:
            raise NoThreadLeft(int(self._threads.total_tokens))
        returned = False
        try:
            result = await trio.to_thread.run_sync(
                handler.call,
                context,
                job.payload,
                abandon_on_cancel=True,
                limiter=self._threads,
            )
            returned = True
            return result
        except BaseException as error:
            returned = raised_by_task_code(error)  # the handler raised: its thread is done
            raise
        finally:
            if not returned:
                logger.warning(
                    "worker.thread_abandoned", extra={"task_id": job.id, "task_type": job.type}
                )

    def _report(self, task_id: str, fraction: float, message: str) -> None:
        """Progress from task code, in the event loop or in a worker thread; dropped if full."""
        try:
            trio.lowlevel.current_task()
        except RuntimeError:
            trio.from_thread.run_sync(self._report, task_id, fraction, message)
            return
        try:
            self._store.try_tell(ProgressReported(task_id, fraction, message))
        except (MailboxFull, ActorStopped):
            logger.debug("task.progress_dropped", extra={"task_id": task_id})
