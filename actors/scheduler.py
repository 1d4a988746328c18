"""The scheduler actor: the ready queue, the timers, and who runs what.

Workers pull: an idle worker asks for work and the scheduler answers when it has some, so
priority order is exact at dispatch. When many fast tasks are queued a worker gets a small batch
(up to a fair share, and only as many as are expected to take about a millisecond together),
which is what lets a task cost a few yields per batch instead of per task.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import trio

from .actor import Actor, Context
from .errors import ActorStopped, MailboxFull, OncueError, StoreUnavailable
from .mailbox import ActorRef, Envelope
from .messages import (
    Claim,
    Claimed,
    Completed,
    Drain,
    Failed,
    GetLoad,
    Interrupt,
    Job,
    Load,
    LoadQueue,
    Outcome,
    Purge,
    Record,
    RequestWork,
    Requeued,
    Retrying,
    SetPaused,
    Started,
    TaskCancelled,
    TasksReady,
    WaitDrained,
    Wake,
    WorkerStopped,
)
from .queues import Queues, attempts_exhausted, backoff_delay, node_lost, should_retry
from .registry import Registry, RetryPolicy
from .task import TaskState

logger = logging.getLogger(__name__)

MAX_BATCH = 32  # jobs one worker may take at once
BATCH_BUDGET = 0.001  # seconds of expected work one batch may hold
START_DELAY = 0.002  # seconds a Started may wait to share a batch with the task's outcome
PURGE_BATCH = 1000  # finished tasks deleted per transaction
PURGE_EVERY = (1.0, 600.0)  # retention / 10, within these bounds (seconds)
CLAIM_POLL = 1.0  # shared store: seconds between claims of an engine with room (notices: sooner)
PREFETCH = (1, 1, 32)  # shared store: claimed tasks held per worker: least, at first, most
PREFETCH_WORK = 0.05  # seconds of expected work the claimed tasks of one worker should hold
_DEFERRED = object()


class Scheduler(Actor):
    """Holds every queued task, hands work to idle workers, applies the retry policy."""

    reply_errors = (OncueError, ValueError)

    def __init__(
        self,
        store: ActorRef,
        registry: Registry,
        rng: random.Random,
        wall_clock: Callable[[], float] = time.time,
        retention: float | None = None,
        node: str | None = None,
    ) -> None:
        self._store = store
        self._shared = node is not None  # a shared store: the queues buffer what we claimed
        self._node_prefix = "" if node is None else f"{node}/"  # in worker names of records
        self._claiming = False  # a Claim is out; its Claimed has not come back
        self._claim_now = True  # a notice (or a full claim) says more may be waiting
        self._claim_at = -math.inf  # the next poll, trio time
        self._retention = retention
        self._purge_at = math.inf
        self._registry = registry
        self._rng = rng
        self._wall = wall_clock
        self._queues = Queues()
        self._idle: deque[tuple[Envelope, str]] = deque()
        self._assigned: dict[str, dict[str, Job]] = {}  # worker -> jobs it holds
        self._holder: dict[str, str] = {}  # task id -> worker holding it
        self._cancelled: set[str] = set()  # held tasks cancelled since they were handed out
        self._workers: dict[str, ActorRef] = {}
        self._done: dict[str, int] = {}
        self._durations: dict[str, float] = {}  # per type, moving average, seconds
        self._changes: list[Any] = []
        self._starts_only = True  # only Started in _changes: their flush may wait a little
        self._flush_at = math.inf
        self._paused = False
        self._draining = False
        self._drained_waiters: list[Envelope] = []
        self._handlers: dict[type, Callable[[Any, Envelope], Any]] = {
            TasksReady: self._tasks_ready,
            TaskCancelled: self._task_cancelled,
            RequestWork: self._request_work,
            WorkerStopped: self._worker_stopped,
            SetPaused: self._set_paused,
            Drain: self._drain,
            WaitDrained: self._wait_drained,
            GetLoad: self._get_load,
            Claimed: self._claimed,
            Wake: self._wake,
        }

    async def run(self, context: Context) -> None:
        # Ready first: the supervisor waits for that, and must stay free to restart the store
        # should it crash while we load from it. What arrives meanwhile waits in the mailbox.
        context.started()
        await self._recover()
        mailbox = context.mailbox
        queues = self._queues
        self._start_retention()
        ended = False
        while not ended:
            # One cancel scope until a timer fires, not one per turn (entering one costs more
            # than a turn): its deadline is the next timer only while we wait for messages.
            with trio.CancelScope() as waiting:
                while True:
                    waiting.deadline = min(
                        queues.next_deadline(), self._purge_at, self._flush_at, self._next_claim()
                    )
                    try:
                        self._handle(await mailbox.receive())
                    except trio.EndOfChannel:
                        ended = True
                        break
                    waiting.deadline = math.inf  # what follows must not be cut short
                    while True:
                        try:
                            self._handle(mailbox.receive_nowait())
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                    await self._turn()
            if not ended:  # a timer fired
                await self._turn()
        await self._flush(force=True)

    async def _turn(self) -> None:
        """After the messages: release due timers, hand out work, claim more (shared stores),
        send the store the changes."""
        now = trio.current_time()
        self._queues.release_due(now)
        self._purge_due(now)
        self._dispatch()
        self._claim()
        if self._drained_waiters and not self._holder:
            for waiter in self._drained_waiters:
                waiter.reply(None)
            self._drained_waiters.clear()
        await self._flush()

    async def _recover(self) -> None:
        """Rebuild the queues from the store; tasks it says are running lost their worker."""
        now = self._wall()
        for job, state in await self._load_queue():
            if state is TaskState.RUNNING:
                if attempts_exhausted(job):  # its node died running it, again: a poison task
                    self._change(Failed(job.id, node_lost(job), now))
                    continue
                self._change(Requeued(job.id, started=True, at=now))
            self._enqueue(job)
        if self._queues.queued:
            logger.info("scheduler.recovered queued=%d", len(self._queues.queued))

    async def _load_queue(self) -> list[tuple[Job, TaskState]]:
        """The store's unfinished tasks; during a backend outage (the store answers
        StoreUnavailable until it recovers and restarts us all) ask again with backoff, instead
        of crashing until our supervisor gives up (found by the simulation, seed 468)."""
        delay = 0.05
        while True:
            try:
                loaded: list[tuple[Job, TaskState]] = await self._store.ask(LoadQueue())
                return loaded
            except StoreUnavailable:
                await trio.sleep(delay)
                delay = min(delay * 2, 5.0)

    # -- retention ---------------------------------------------------------------------------------

    def _start_retention(self) -> None:
        """Arm the purge timer. Its cutoff is the wall clock at start plus trio time since, so
        it moves with trio's clock (a MockClock in tests) and never jumps with the system's."""
        if self._retention is None:
            return
        now = trio.current_time()
        self._wall_epoch = self._wall() - now
        self._purge_every = min(max(self._retention / 10, PURGE_EVERY[0]), PURGE_EVERY[1])
        self._purge_at = now + self._purge_every

    def _purge_due(self, now: float) -> None:
        if now < self._purge_at or self._retention is None:
            return
        self._purge_at = now + self._purge_every
        before = self._wall_epoch + now - self._retention
        try:
            self._store.try_tell(Purge(before, PURGE_BATCH))
        except (ActorStopped, trio.WouldBlock):
            logger.debug("scheduler.purge_skipped reason=store_busy")

    def _handle(self, envelope: Envelope) -> None:
        try:
            answer = self._handlers[type(envelope.message)](envelope.message, envelope)
        except self.reply_errors as error:
            envelope.fail(error)
        else:
            if answer is not _DEFERRED:
                envelope.reply(answer)

    def _change(self, change: Any) -> None:
        """Record a transition that must reach the store this turn (it may wake waiters)."""
        self._changes.append(change)
        self._starts_only = False

    async def _flush(self, *, force: bool = False) -> None:
        """Send the store what this turn decided. Starts alone may wait START_DELAY for company:
        a fast task's start and outcome then cost the store one batch instead of two."""
        if not self._changes:
            return
        if not force and self._starts_only and trio.current_time() < self._flush_at:
            return
        changes, self._changes = self._changes, []
        self._starts_only, self._flush_at = True, math.inf
        await self._store.tell(Record(changes))

    # -- queueing ----------------------------------------------------------------------------------

    def _enqueue(self, job: Job) -> None:
        if job.id in self._holder:
            return
        delay = None if job.run_at is None else job.run_at - self._wall()
        if delay is not None and delay > 0:
            self._queues.push(job, trio.current_time() + delay)
        else:
            self._queues.push(job)

    def _tasks_ready(self, message: TasksReady, envelope: Envelope) -> None:
        queued = self._queues.queued
        for job in message.jobs:
            if job.id not in queued:  # after a restart, the store's load may already have it
                self._enqueue(job)

    def _task_cancelled(self, message: TaskCancelled, envelope: Envelope) -> None:
        if self._queues.remove(message.id):
            return
        worker = self._holder.get(message.id)
        if worker is not None:
            self._cancelled.add(message.id)  # whatever its worker reports, it is over
            self._tell_worker(worker, Interrupt(message.id, "cancelled"))

    def _was_cancelled(self, task_id: str) -> bool:
        """True (once) for a task cancelled while a worker held it: no retry, no re-queue."""
        if task_id in self._cancelled:
            self._cancelled.discard(task_id)
            return True
        return False

    def _tell_worker(self, worker: str, message: Interrupt) -> None:
        ref = self._workers.get(worker)
        if ref is None:
            return
        try:
            ref.try_tell(message)
        except (ActorStopped, trio.WouldBlock):
            logger.warning("scheduler.interrupt_undelivered worker=%s", worker)

    # -- workers -----------------------------------------------------------------------------------

    def _request_work(self, message: RequestWork, envelope: Envelope) -> Any:
        worker = message.worker
        self._workers[worker] = message.ref
        if message.fresh:  # a new incarnation: what the old one held or asked is void
            self._lose(worker, started=True)
            self._idle = deque(item for item in self._idle if item[1] != worker)
        for outcome in message.outcomes:
            self._settle(worker, outcome)
        if self._draining:
            return None
        self._idle.append((envelope, worker))
        return _DEFERRED

    def _worker_stopped(self, message: WorkerStopped, envelope: Envelope) -> None:
        worker = message.worker
        for outcome in message.outcomes:
            self._settle(worker, outcome)
        self._lose(worker, started=False)
        self._idle = deque(item for item in self._idle if item[1] != worker)
        self._workers.pop(worker, None)

    def _lose(self, worker: str, *, started: bool) -> None:
        """Re-queue what ``worker`` held: it restarted (``started``: assume begun) or left."""
        jobs = self._assigned.pop(worker, None)
        if not jobs:
            return
        now = self._wall()
        for job in jobs.values():
            del self._holder[job.id]
            if self._was_cancelled(job.id):
                continue
            self._change(Requeued(job.id, started=started, at=now))
            if not self._draining:
                self._enqueue(job._replace(attempts=job.attempts + started))
        logger.warning("scheduler.requeued worker=%s tasks=%d", worker, len(jobs))

    def _dispatch(self) -> None:
        if self._paused or self._draining:
            return
        queues = self._queues
        idle = self._idle
        while idle and queues.peek() is not None:
            envelope, worker = idle.popleft()
            if envelope.abandoned:  # its asker is gone (a worker stopped by a restart)
                envelope.drop()  # handing it work would hold that work for nobody
                continue
            share = min(MAX_BATCH, -(-queues.ready_count() // (len(idle) + 1)))
            jobs = self._take(share)
            held = self._assigned.setdefault(worker, {})
            now = self._wall()
            label = self._node_prefix + worker
            holder = self._holder
            for job in jobs:
                held[job.id] = job
                holder[job.id] = worker
            self._changes.append(Started([job.id for job in jobs], label, now))
            self._flush_at = min(self._flush_at, trio.current_time() + START_DELAY)
            envelope.reply(jobs)

    def _take(self, share: int) -> list[Job]:
        """Pop the best job, then more while the batch is expected to stay within budget."""
        queues = self._queues
        jobs = [queues.pop()]
        budget = BATCH_BUDGET - self._durations.get(jobs[0].type, BATCH_BUDGET)
        while len(jobs) < share:
            job = queues.peek()
            if job is None:
                break
            budget -= self._durations.get(job.type, BATCH_BUDGET)
            if budget < 0:
                break
            jobs.append(queues.pop())
        return jobs

    # -- outcomes ----------------------------------------------------------------------------------

    def _settle(self, worker: str, outcome: Outcome) -> None:
        job = outcome.job
        if self._holder.get(job.id) != worker:
            return  # re-queued already (the worker was presumed lost)
        del self._holder[job.id]
        held = self._assigned[worker]
        del held[job.id]
        if not held:
            del self._assigned[worker]
        if self._was_cancelled(job.id):
            return
        kind = outcome.kind
        now = outcome.finished_at or self._wall()
        if kind in ("returned", "interrupted"):
            started = kind == "interrupted"
            self._change(Requeued(job.id, started=started, at=now))
            if not self._draining:
                self._enqueue(job._replace(attempts=job.attempts + started))
            return
        self._done[worker] = self._done.get(worker, 0) + 1
        self._measure(job.type, outcome)
        if kind == "ok":
            self._change(Completed(job.id, outcome.result, now))
        elif kind != "cancelled":
            self._fail(job, outcome, now)

    def _fail(self, job: Job, outcome: Outcome, now: float) -> None:
        assert outcome.error is not None
        attempt = job.attempts + 1
        if not should_retry(job, attempt, outcome):
            self._change(Failed(job.id, outcome.error, now))
            return
        delay = outcome.retry_delay
        if delay is None:
            policy = self._policy(job.type)
            delay = backoff_delay(policy, attempt, self._rng)
        run_at = now + delay
        self._change(Retrying(job.id, outcome.error, run_at, now))
        retry = job._replace(attempts=attempt, run_at=run_at)
        self._queues.push(retry, trio.current_time() + delay)
        logger.info("task.retry id=%s attempt=%d delay=%.3fs", job.id, attempt, delay)

    def _policy(self, task_type: str) -> RetryPolicy:
        try:
            return self._registry.get(task_type).retry
        except LookupError:
            return RetryPolicy()

    def _measure(self, task_type: str, outcome: Outcome) -> None:
        if outcome.started_at is None or outcome.finished_at is None:
            return
        took = outcome.finished_at - outcome.started_at
        previous = self._durations.get(task_type)
        self._durations[task_type] = took if previous is None else 0.8 * previous + 0.2 * took

    # -- a shared store: the queues are a buffer of claimed tasks ----------------------------------

    def _room(self) -> int:
        """How many tasks to claim: none until the buffer is half empty, then fill it."""
        if not self._shared or self._claiming or self._paused or self._draining:
            return 0
        prefetch = self._per_worker() * len(self._workers)  # no workers: nothing to claim
        room = prefetch - self._queues.ready_count() - len(self._holder)  # queued or running
        return room if room > 0 and 2 * room >= prefetch else 0

    def _per_worker(self) -> int:
        """Many short tasks per worker (claims are round trips), few long ones (the others
        would wait on what this engine holds), from the measured task durations."""
        least, first, most = PREFETCH
        if not self._durations:
            return first
        typical = sum(self._durations.values()) / len(self._durations)
        return int(min(max(PREFETCH_WORK / max(typical, 1e-6), least), most))

    def _next_claim(self) -> float:
        if not self._room():
            return math.inf
        return -math.inf if self._claim_now else self._claim_at

    def _claim(self) -> None:
        room = self._room()
        now = trio.current_time()
        if not room or (now < self._claim_at and not self._claim_now):
            return
        try:
            self._store.try_tell(Claim(room, CLAIM_POLL))
        except (ActorStopped, MailboxFull, trio.WouldBlock):
            logger.debug("scheduler.claim_skipped reason=store_busy")  # the next poll tries
        else:
            self._claiming = True
        self._claim_now = False
        self._claim_at = now + CLAIM_POLL

    def _claimed(self, message: Claimed, envelope: Envelope) -> None:
        self._claiming = False
        self._claim_now = self._claim_now or len(message.jobs) >= message.limit
        for job in message.jobs:
            self._enqueue(job)

    def _wake(self, message: Wake, envelope: Envelope) -> None:
        self._claim_now = True

    # -- control -----------------------------------------------------------------------------------

    def _set_paused(self, message: SetPaused, envelope: Envelope) -> None:
        self._paused = message.paused
        self._no_room()

    def _no_room(self) -> None:
        """A shared store: tell the store we take nothing more (paused or draining), so it
        keeps none of what is submitted here for us."""
        if self._shared and (self._paused or self._draining):
            try:
                self._store.try_tell(Claim(0, CLAIM_POLL))
            except (ActorStopped, MailboxFull, trio.WouldBlock):
                logger.debug("scheduler.no_room_undelivered")

    def _drain(self, message: Drain, envelope: Envelope) -> int:
        """Stop dispatching; tell idle workers to stop asking; interrupt running jobs if asked."""
        self._draining = True
        self._no_room()
        for waiting, _ in self._idle:
            waiting.reply(None)
        self._idle.clear()
        if message.interrupt:
            for worker in self._assigned:
                self._tell_worker(worker, Interrupt(None, "shutdown"))
        return len(self._holder)

    def _wait_drained(self, message: WaitDrained, envelope: Envelope) -> Any:
        if not self._holder:
            return None
        self._drained_waiters.append(envelope)
        return _DEFERRED

    def _get_load(self, message: GetLoad, envelope: Envelope) -> Load:
        current = {worker: next(iter(jobs)) for worker, jobs in self._assigned.items() if jobs}
        return Load(
            busy=len(current),
            idle=len(self._idle),
            paused=self._paused,
            current=current,
            done=dict(self._done),
        )
