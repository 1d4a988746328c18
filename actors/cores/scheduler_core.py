"""The scheduler's rules, free of I/O: what is queued, who gets which work, what is recorded.

The actor (scheduler.py) turns each message into a method call here, calls :meth:`turn` after
each drain of its mailbox, sends what the core put in its outbox and :meth:`take_changes`, and
waits for the next message until :meth:`next_deadline` (timers are data). The core reads two
injected clocks (the scheduler's, for timers; the wall clock, for what is recorded) and
imports neither trio nor a backend. Its parts: queues.py (the heaps), holdings.py (who holds
what), roster.py (the workers, the idle ones), dispatch.py (who gets which work), durations.py
(batch and prefetch sizes), settlement.py (what an outcome becomes), claims.py (a shared
store's claims), recording.py (the outbox, the next Record, retention).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Generic

from ..messages import (
    Claim,
    Completed,
    Failed,
    Interrupt,
    Job,
    JobFailed,
    JobSucceeded,
    Load,
    Outcome,
    Requeued,
)
from ..task import tuple_of
from .claims import CLAIM_POLL, Claims
from .dispatch import Dispatch
from .durations import Durations
from .holdings import Holdings
from .linger import LINGER_BATCH, Linger
from .queues import Queues
from .recording import Changes, Confirmations, Outbox, Retention, Transition, Waiter
from .roster import Roster
from .settlement import Requeue, RetryLater, attempts_exhausted, lost, node_lost, settle

if TYPE_CHECKING:
    from ..registry import RetryPolicy

logger = logging.getLogger(__name__)


class SchedulerCore(Generic[Waiter]):
    """Holds every queued task, hands work to idle workers, applies the retry policy.

    ``clock`` reads the scheduler's clock (seconds, for timers); ``wall`` the wall clock (for
    the times recorded); ``policy`` gives a task type's retry policy. ``retention``: seconds
    finished tasks are kept (None: forever). ``node``: this engine's name on a shared store
    (None: the store is this engine's own). ``linger``: seconds a trickle of ready tasks may
    be held back for company (0: never), so a producer submitting one task at a time gets its
    tasks run in batches (linger.py); ``linger_batch``: how many end a linger at once.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        wall: Callable[[], float],
        policy: Callable[[str], RetryPolicy],
        rng: random.Random,
        retention: float | None = None,
        node: str | None = None,
        gone: Callable[[Waiter], bool] = lambda waiter: False,
        confirm_starts: bool = False,
        linger: float = 0.0,
        linger_batch: int = LINGER_BATCH,
    ) -> None:
        self._clock = clock
        self._wall = wall
        self._policy = policy
        self._rng = rng
        self.queues = Queues()
        self.holdings = Holdings()
        self.durations = Durations()
        self.claims = Claims(shared=node is not None)  # shared: the queues buffer our claims
        self.outbox: Outbox[Waiter] = Outbox()
        self.paused = False
        self.draining = False
        self.roster: Roster[Waiter] = Roster()  # the workers, the idle ones, what each did
        self._drained_waiters: list[Waiter] = []
        self.changes = Changes()  # the next Record
        self.retention = Retention(retention)
        self._change = self.changes.add
        self.confirmations: Confirmations[Waiter] = Confirmations(confirm_starts)
        self.linger = Linger(linger, linger_batch)
        self.dispatch: Dispatch[Waiter] = Dispatch(
            queues=self.queues,
            holdings=self.holdings,
            durations=self.durations,
            roster=self.roster,
            linger=self.linger,
            changes=self.changes,
            confirmations=self.confirmations,
            outbox=self.outbox,
            clock=clock,
            wall=wall,
            gone=gone,  # whether a waiter's asker gave up (a worker stopped by a restart)
            label_prefix="" if node is None else f"{node}/",  # in worker names of records
        )

    # -- time --------------------------------------------------------------------------------------

    def start(self) -> None:
        """Arm the retention timer (once, as the loop starts)."""
        self.retention.start(self._clock(), self._wall())

    def next_deadline(self) -> float:
        """When :meth:`turn` must run again even if no message comes (the end of a linger
        too)."""
        return min(
            self.queues.next_deadline(),
            self.retention.purge_at,
            self.changes.flush_at,
            self.claims.next_claim(self._room()),
            self.linger.until,
        )

    def turn(self) -> None:
        """After the messages: release due timers, hand out work, claim (shared stores)."""
        now = self._clock()
        self.queues.release_due(now)
        purge = self.retention.due(now)
        if purge is not None:
            self.outbox.to_store.append(purge)
        linger = self.linger
        accepting = not (self.paused or self.draining)
        if not (linger.seconds and self.dispatch.hold(now, accepting=accepting)):
            self._dispatch(now, gathered=linger.gathered)
            linger.gathered = False
        self._claim()
        if self._drained_waiters and not self.holdings:
            self.outbox.replies.extend((waiter, None) for waiter in self._drained_waiters)
            self._drained_waiters.clear()

    def take_changes(self, *, force: bool = False) -> list[Transition] | None:
        """The transitions to send the store now (one Record), if any (``force``: whatever
        is pending; the scheduler is stopping)."""
        changes = self.changes
        return changes.take(self._clock(), force=force) if changes.pending else None

    # -- queueing ----------------------------------------------------------------------------------

    def recover(self, loaded: Iterable[tuple[Job, bool]]) -> None:
        """Queue the unfinished tasks the store holds, ``(job, running)`` each: those it says
        were running lost their worker (this scheduler restarted)."""
        now = self._wall()
        for job, running in loaded:
            if running:
                if attempts_exhausted(job):  # its node died running it, again: a poison task
                    self._change(Failed(job.id, node_lost(job), now))
                    continue
                self._change(Requeued(job.id, True, now))
            self._enqueue(job)
        if self.queues.queued:
            logger.info("scheduler.recovered", extra={"queued": len(self.queues.queued)})

    def tasks_ready(self, jobs: Iterable[Job]) -> None:
        # Those already queued are skipped: after a restart, the store's load may have them.
        queues, held = self.queues, self.holdings.holder
        ready: list[Job] = []  # the common case, pushed together (in order): no run_at, not held
        for job in jobs:
            if job.run_at is None and job.id not in held:
                ready.append(job)
                continue
            if ready:
                queues.push_ready(ready)
                ready = []
            if job.id not in queues.queued:
                self._enqueue(job)
        queues.push_ready(ready)

    def task_cancelled(self, task_id: str) -> None:
        """Drop the task from the queues, or interrupt the worker holding it."""
        self.holdings.returning.pop(task_id, None)
        if self.queues.remove(task_id):
            return
        held = self.holdings.cancel(task_id)
        # An answer still held for its Started's commit loses the task when it goes out
        # (starts_recorded); an interrupt as well would reach the worker before or after that
        # answer, and one heard after it would skip the task were it handed out again later
        # (a shared store's claim: found by the shared simulation with a linger, seed 39). The
        # interrupt names the hand-out (its Job): a worker skips only that one.
        if held is not None and not self.confirmations.holds(task_id):
            worker, job = held
            self.outbox.interrupts.append((worker, Interrupt(task_id, "cancelled", job)))

    def _enqueue(self, job: Job) -> None:
        if job.id in self.holdings:
            self.holdings.hold_back(job)  # claimed back while a cancelled run of it stops
            return
        if job.run_at is not None:
            delay = job.run_at - self._wall()
            if delay > 0:
                self.queues.push(job, self._clock() + delay)
                return
        self.queues.push(job)

    # -- workers -----------------------------------------------------------------------------------

    def request_work(
        self, worker: str, waiter: Waiter, outcomes: Iterable[Outcome], *, fresh: bool
    ) -> bool:
        """``worker`` is idle, after ``outcomes``; ``fresh``: a new incarnation (what the old
        one held is lost). True: ``waiter`` gets its work through the outbox; False: answer
        None now (the engine is draining: stop asking)."""
        self.roster.asked(worker, fresh=fresh)
        if fresh:  # a new incarnation: what the old one held or asked is void
            self._lose(worker, started=True)
        for outcome in outcomes:
            self._settle(worker, outcome)
        if self.draining:
            return False
        self.roster.wait(waiter, worker)
        return True

    def worker_stopped(self, worker: str, outcomes: Iterable[Outcome]) -> None:
        """``worker`` left for good after ``outcomes``: re-queue the rest of what it held."""
        for outcome in outcomes:
            self._settle(worker, outcome)
        self._lose(worker, started=False)
        self.roster.left(worker)

    def _returned(self) -> None:
        """Queue what a claim brought back while a cancelled run of it was stopping, now that
        it stopped (holdings.py)."""
        for job in self.holdings.returned():
            self._enqueue(job)

    def _lose(self, worker: str, *, started: bool) -> None:
        """Re-queue what ``worker`` held: it restarted (``started``: assume begun) or left."""
        jobs = self.holdings.release_all(worker)
        self._returned()
        if not jobs:
            return
        now = self._wall()
        for job in jobs:
            self._requeue(lost(job, started=started, at=now))
        logger.warning("scheduler.requeued", extra={"worker": worker, "tasks": len(jobs)})

    def _settle(self, worker: str, outcome: Outcome) -> None:
        job = outcome.job
        if not self.holdings.release(worker, job.id):
            self._returned()
            return  # re-queued already (the worker was presumed lost), or cancelled
        if type(outcome) is JobSucceeded:  # the common case, inline: a call a task costs ~1%
            done = self.roster.done
            done[worker] = done.get(worker, 0) + 1
            self.durations.measure(job.type, outcome.started_at, outcome.finished_at)
            self._change(tuple_of(Completed, (job.id, outcome.result, outcome.finished_at)))
            return
        decision = settle(outcome, self._wall, self._policy, self._rng)
        if isinstance(decision, Requeue):  # interrupted or returned: not done here
            self._requeue(decision)
            return
        self.roster.finished(worker)
        if isinstance(outcome, JobFailed):
            self.durations.measure(job.type, outcome.started_at, outcome.finished_at)
        if isinstance(decision, RetryLater):
            self._change(decision.transition)
            self.queues.push(decision.job, self._clock() + decision.delay)
        elif decision is not None:
            self._change(decision)

    def _requeue(self, decision: Requeue) -> None:
        self._change(decision.transition)
        if not self.draining:
            self._enqueue(decision.job)

    def _dispatch(self, now: float, *, gathered: bool = False) -> None:
        if not (self.paused or self.draining):
            self.dispatch.run(now, gathered=gathered)

    # -- a shared store: the queues are a buffer of claimed tasks ----------------------------------

    def _room(self) -> int:
        if not self.claims.shared:
            return 0
        prefetch = self.durations.per_worker() * len(self.roster.workers)  # no workers: no claims
        buffered = self.queues.ready_count() + len(self.holdings)  # queued or running
        return self.claims.room(prefetch, buffered, accepting=not (self.paused or self.draining))

    def _claim(self) -> None:
        room = self._room()
        if room:
            limit = self.claims.due(room, self._clock())
            if limit:
                self.outbox.to_store.append(Claim(limit, CLAIM_POLL))

    def claimed(self, jobs: Iterable[Job], limit: int) -> None:
        """The store's answer to our Claim of ``limit``."""
        jobs = list(jobs)
        self.claims.answered(len(jobs), limit)
        for job in jobs:
            self._enqueue(job)

    def starts_recorded(self, token: object) -> None:
        """The store committed the Record that carried ``token``: hand out its work, less the
        tasks cancelled meanwhile (the store tells their cancel first): those never begin, and
        leave the holdings as a worker's report of them would."""
        answers = self.confirmations.recorded(token)
        if self.holdings.cancelled:
            drop = self.holdings.without_cancelled
            answers = [(waiter, drop(jobs)) for waiter, jobs in answers]
            self._returned()
        self.outbox.replies.extend(answers)

    def claim_undelivered(self) -> None:
        """The Claim from the outbox could not be sent; the next poll tries again."""
        self.claims.undelivered()

    def wake(self) -> None:
        self.claims.wake()

    # -- control -----------------------------------------------------------------------------------

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self._no_room()

    def _no_room(self) -> None:
        """A shared store: tell the store we take nothing more (paused or draining), so it
        keeps none of what is submitted here for us."""
        if self.claims.shared and (self.paused or self.draining):
            self.outbox.to_store.append(Claim(0, CLAIM_POLL))

    def drain(self, *, interrupt: bool) -> int:
        """Stop dispatching; idle workers stop asking; interrupt running jobs if asked. Returns
        how many tasks workers hold."""
        self.draining = True
        self._no_room()
        self.outbox.replies.extend((waiter, None) for waiter in self.roster.dismiss())
        if interrupt:
            for worker in self.holdings.workers():
                self.outbox.interrupts.append((worker, Interrupt(None, "shutdown")))
        return len(self.holdings)

    def wait_drained(self, waiter: Waiter) -> bool:
        """True: ``waiter`` is answered (None, through the outbox) once no worker holds a task;
        False: none does now."""
        if not self.holdings:
            return False
        self._drained_waiters.append(waiter)
        return True

    def load(self) -> Load:
        current = self.holdings.current()
        return Load(
            busy=len(current),
            idle=len(self.roster.idle),
            paused=self.paused,
            current=current,
            done=dict(self.roster.done),
        )
