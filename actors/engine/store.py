"""The store actor: the one writer of task state, a thin adapter around its core.

It drains its mailbox in batches. For each message it reads from the backend what the message
needs (a task not in memory, the tasks of some keys, what a shared store's admission goes by),
then applies it to the core (store_core.py), which decides and fills the batch; the batch is
committed to the backend in one transaction, and only then are asks answered, waiters woken,
events published and the scheduler told of new work (telling.py). So a task is never
acknowledged, nor run, before it is committed. Local or shared ownership is chosen once, at
start (ownership.py, sharing.py).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, cast

import attrs
import trio

from ..backends import Backend, SharedBackend, is_shared
from ..cores.batch import Batch, Counts
from ..cores.ownership import Chores, LocalOwnership, SharedOwnership
from ..cores.recent import RecentResults
from ..cores.record import TaskRecord
from ..cores.store_core import StoreCore
from ..cores.tally import Counting, Tally
from ..errors import ActorStopped, MailboxFull, OncueError, StoreUnavailable
from ..messages import (
    CancelTask,
    CloseAdmission,
    DeleteTask,
    GetTally,
    LoadQueue,
    ProgressReported,
    Purge,
    Record,
    RetryTask,
    Submit,
    SubmitNowait,
    Subscribe,
)
from ..runtime.actor import Actor, Context
from ..runtime.mailbox import ActorRef, Envelope, Mailbox
from ..task import TaskState
from .batches import after_answers, drain
from .bulk import DEFERRED, BulkReads
from .guard import FAILURES, BackendGuard, OutageHistory
from .listeners import Listeners
from .reads import Reads
from .sharing import Answer, Link, LocalLink, SharedHandlers, SharedLink
from .telling import SchedulerLine

logger = logging.getLogger(__name__)

_DEFERRED = DEFERRED  # a handler's answer meaning "the reply comes later"


@attrs.define
class StoreLife:
    """What the store's slot remembers across incarnations (the engine keeps one)."""

    loaded: bool = False  # a store has loaded from the backend at least once
    outages: OutageHistory = attrs.field(factory=OutageHistory)  # recent backend outages
    tally: Counting = attrs.field(factory=Counting)  # transitions since the engine started


class Store(Actor):
    """Owns the Backend; every task state change goes through here."""

    reply_errors = (OncueError, ValueError, LookupError)

    def __init__(
        self,
        backend: Backend,
        scheduler: ActorRef,
        queue_size: int,
        life: StoreLife,
        node: str | None = None,
        recent: RecentResults | None = None,
    ) -> None:
        self._life = life
        # Recently finished tasks, read back without the backend (none kept: RecentResults(0)).
        self._recent = recent if recent is not None else RecentResults(0)
        # The memory backend's bound on finished tasks (backends/memory.py); None elsewhere.
        self._trim_finished: Callable[[], Counts] | None = getattr(backend, "trim_finished", None)
        self._node = node  # our name among the engines of a shared backend
        self._backend = backend
        self._guard = BackendGuard(backend, life.outages)
        self._line = SchedulerLine(scheduler)  # what the scheduler is told after a commit
        self._queue_size = queue_size
        self._listeners = Listeners()
        self._purge: Purge | None = None
        self._self: ActorRef | None = None
        self._confirms: list[object] = []  # of this batch's Records: StartsRecorded after commit
        self._batch: list[Envelope] = []  # the batch taken last (failed if its commit is cut)
        self._handlers: dict[type, Callable[[Any, Envelope], Any]] = {
            Submit: self._submit,
            SubmitNowait: self._submit_nowait,
            Record: self._record,
            ProgressReported: self._progress,
            CancelTask: self._cancel,
            DeleteTask: self._delete,
            RetryTask: self._retry,
            Subscribe: self._subscribe,
            CloseAdmission: self._close_admission,
            LoadQueue: self._load_queue,
            Purge: self._request_purge,
            GetTally: self._get_tally,
        }  # and, once the core exists (_start), those of its parts: reads, bulk, shared

    async def run(self, context: Context) -> None:
        if self._life.loaded:
            loaded = await self._guard.load_when_reachable()
        else:
            loaded = await self._guard.load()  # at start-up a broken backend fails at once
            self._life.loaded = True
        unfinished, counts, last_number = loaded
        self._start(unfinished, counts, last_number)
        self._self = context.ref
        context.started()
        reason = "the store restarted"
        try:
            await self._serve(context.mailbox)
            reason = ""
        finally:
            self._listeners.end_subscriptions(reason)
        await self._link.release()  # a graceful stop: the last batch is committed
        await self._backend.close()

    def _start(self, unfinished: list[TaskRecord], counts: Counts, last_number: int) -> None:
        """Choose the ownership, once: this engine alone, or one of the engines sharing it."""
        if is_shared(self._backend):
            assert self._node is not None
            shared = SharedOwnership(self._node, trio.current_time)
            self._core = StoreCore(shared, self._queue_size, unfinished, counts)
            backend = cast(SharedBackend, self._backend)
            self._link: Link = SharedLink(self._core, shared, backend, self._guard)
        else:
            local = LocalOwnership(last_number)
            self._core = StoreCore(local, self._queue_size, unfinished, counts)
            self._link = LocalLink(self._core)
        if not self._backend.durable:  # its commits cannot fail: count as they are made
            self._core.counted = self._life.tally
        core, read = self._core, self._guard.read
        self._reads = Reads(core, self._backend, self._listeners, self._recent, self._link, read)
        bulk = BulkReads(core, self._backend, self._listeners, self._recent, read)
        remote = SharedHandlers(core, self._tell_scheduler)
        self._handlers.update({**self._reads.handlers(), **bulk.handlers(), **remote.handlers()})

    async def _serve(self, mailbox: Mailbox) -> None:
        # One cancel scope times every commit, its deadline moved for each (guard.commit_within):
        # cheaper than a scope a commit. Past the deadline it cancels the commit and lands here.
        with trio.CancelScope() as deadline:
            await self._serve_batches(mailbox, deadline)
            return
        # As a commit raising TooSlowError (_process): this batch fails, then the outage.
        error = trio.TooSlowError(f"a commit took over {self._guard.commit_deadline}s")
        for envelope in self._batch:
            envelope.fail(StoreUnavailable(error))
        await self._guard.outage(mailbox, error)

    async def _serve_batches(self, mailbox: Mailbox, deadline: trio.CancelScope) -> None:
        durable = self._backend.durable
        answered = 0  # asks the last batch answered, on a durable store
        while True:
            if answered:
                batch = await after_answers(mailbox, answered)
            else:
                try:
                    batch = [await mailbox.receive()]
                except trio.EndOfChannel:
                    return
                drain(mailbox, batch)
            if not batch:  # the mailbox closed
                return
            self._batch = batch
            answers = await self._process(batch, mailbox, deadline)
            if durable:  # (a memory store's commit is cheaper than waiting for the answered)
                answered = sum(1 for envelope, _, _ in answers if envelope.is_ask)

    # -- one batch ---------------------------------------------------------------------------------

    async def _process(
        self, envelopes: list[Envelope], mailbox: Mailbox, deadline: trio.CancelScope
    ) -> list[Answer]:
        """Apply, commit and answer one batch; the answers it gave (none if its commit
        failed)."""
        batch = self._core.begin(self._listeners.subscribed)
        self._confirms = []
        answers: list[Answer] = []  # a handler's error, too, is an answer
        for envelope in envelopes:
            message = envelope.message
            try:
                answer = await self._handlers[type(message)](message, envelope)
            except self.reply_errors as error:
                answers.append((envelope, error, True))
            else:
                if answer is not _DEFERRED:
                    answers.append((envelope, answer, False))
        if batch.changed or batch.deleted:
            committed = await self._commit(batch, answers, envelopes, mailbox, deadline)
            if committed is None:  # failed: every ask answered unavailable, the outage ridden
                return []
            answers = committed
        chores = self._announce(batch, answers)
        if chores is not None:
            await self._link.run_chores(chores, batch, self._listeners, self._tell_scheduler)
            self._count_committed()  # poison tasks a claim failed (shared stores only)
        if self._purge is not None:
            await self._run_purge(self._purge)
        return answers

    async def _commit(
        self,
        batch: Batch,
        answers: list[Answer],
        envelopes: list[Envelope],
        mailbox: Mailbox,
        deadline: trio.CancelScope,
    ) -> list[Answer] | None:
        """Commit the batch; the answers to give (mended if a shared store lost some tasks'
        leases), or None if the commit failed (then the outage is ridden out here)."""
        try:
            changed = list(batch.changed.values())
            lost = await self._guard.commit_within(deadline, changed, batch.deleted)
        except FAILURES as error:
            for envelope in envelopes:
                envelope.fail(StoreUnavailable(error))
            await self._guard.outage(mailbox, error)
            return None
        if self._core.counted is not self._life.tally:  # (a failed batch's go with the core)
            self._count_committed()
        if lost:
            gone = self._core.lost(lost)
            logger.warning("store.lease_lost", extra={"tasks": len(gone), "ids": sorted(gone)[:10]})
            answers = await self._link.mend(answers, gone)
        return answers

    def _announce(self, batch: Batch, answers: list[Answer]) -> Chores | None:
        """After the commit: answer, tell the scheduler, keep what finished; the shared
        store's chores to run now, if any."""
        for envelope, answer, is_error in answers:
            if is_error:
                envelope.fail(answer)
            else:
                envelope.reply(answer)
        self._line.committed(self._confirms, batch.ready, batch.cancelled)
        if batch.finished:
            self._keep_finished(batch.finished)
        return self._link.committed(batch, self._listeners)

    def _count_committed(self) -> None:
        """Add what the core counted since to the engine's tally (the memory store's core
        counts into it directly: there this is never called)."""
        self._life.tally.absorb(self._core.counted)

    def _keep_finished(self, finished: list[TaskRecord]) -> None:
        """Keep what this batch finished for reading back, and drop the memory backend's
        oldest finished tasks beyond its bound (they leave the counts, as purged ones do)."""
        recent = self._recent
        if recent.max_count > 0:  # none kept in memory: the backend holds them already
            shared = is_shared(self._backend)
            for record in finished:
                # Shared: a failed task may be retried by another node, which we would not hear.
                if not (shared and record.state is TaskState.FAILED):
                    recent.add(record)
        if self._trim_finished is not None:
            self._core.purged(self._trim_finished())

    async def _get_tally(self, message: GetTally, envelope: Envelope) -> Tally:
        return self._life.tally.read()

    def _tell_scheduler(self, message: Any) -> None:
        self._line.tell(message)

    async def _read(self, call: Callable[[], Any]) -> Any:
        return await self._guard.read(call)

    # -- admission and what the workers report -------------------------------------------------

    async def _submit(self, message: Submit, envelope: Envelope) -> Any:
        tasks: list[TaskRecord] = message.tasks
        core = self._core
        reads = core.ownership.admission_reads(len(tasks))
        if reads is not None:  # a shared store's count, or numbers
            await self._link.read_for_admission(reads)
        core.check_admission(0)
        existing: dict[str, TaskRecord] = {}
        for task in tasks:
            key = task.key
            if key is not None and key not in existing:
                found = core.known_key(key) or await self._reads.read_key(key)
                if found is not None:
                    existing[key] = found
        return core.submit(tasks, existing, time.time())

    async def _submit_nowait(self, message: SubmitNowait, envelope: Envelope) -> None:
        # Taken before any await: submit_nowait() now sends a new one, so the tasks counted
        # here (the numbers a shared store reserves for them) are all the tasks there are.
        message.taken = True
        core = self._core
        tasks = message.tasks
        reads = core.ownership.admission_reads(len(tasks))
        if reads is not None:
            await self._link.read_for_admission(reads)
        if any(task.key is not None for task in tasks):  # rare: keep the first of each key
            tasks = await self._reads.first_of_their_keys(tasks)
        for record in core.submit_nowait(tasks, time.time()):
            error = record.error
            reason = None if error is None else f"{error.type}: {error.message}"
            logger.warning("store.refused", extra={"task_id": record.id, "error": reason})
        # what submit_nowait() reads before its next task: room left, as we see it now
        message.admission = (core.queue_size, core.ownership.unfinished_total(core.unfinished))

    async def _record(self, message: Record, envelope: Envelope) -> None:
        self._core.record(message.changes)
        if message.confirm is not None:
            self._confirms.append(message.confirm)

    async def _progress(self, message: ProgressReported, envelope: Envelope) -> None:
        self._core.progress(message.id, message.fraction, message.message)

    # -- operations on one task --------------------------------------------------------------------

    async def _cancel(self, message: CancelTask, envelope: Envelope) -> Any:
        return self._core.cancel(await self._reads.find(message.id), time.time())

    async def _delete(self, message: DeleteTask, envelope: Envelope) -> None:
        record = await self._reads.find(message.id)
        self._core.delete(record)
        self._recent.discard(record.id)

    async def _retry(self, message: RetryTask, envelope: Envelope) -> Any:
        record = await self._reads.find(message.id)
        reads = self._core.ownership.admission_reads(0)
        if reads is not None:
            await self._link.read_for_admission(reads)
        retried = self._core.retry(record, time.time())
        self._recent.discard(record.id)  # no longer finished
        return retried

    # -- the whole store ---------------------------------------------------------------------------

    async def _subscribe(self, message: Subscribe, envelope: Envelope) -> Any:
        return self._listeners.subscribe(message.capacity)

    async def _request_purge(self, message: Purge, envelope: Envelope) -> None:
        self._purge = message  # runs after this batch commits, so it sees the batch's changes

    async def _run_purge(self, message: Purge) -> None:
        """One purge transaction of its own; if it was full, queue the next batch behind the
        work already waiting, so a large backlog never holds the store for long."""
        self._purge = None
        purged = await self._backend.purge(message.before, message.limit)
        self._core.purged(purged)
        self._recent.drop_finished_before(message.before)
        total = sum(purged.values())
        if total:
            logger.info("store.purged", extra={"tasks": total, "before": message.before})
        if total >= message.limit and self._self is not None:
            with contextlib.suppress(MailboxFull, ActorStopped):  # else the next tick goes on
                self._self.try_tell(message)

    async def _close_admission(self, message: CloseAdmission, envelope: Envelope) -> int:
        return self._core.close_admission()

    async def _load_queue(self, message: LoadQueue, envelope: Envelope) -> Any:
        return self._core.queue()
