"""The store actor: the one writer of task state.

It drains its mailbox in batches: every message of a batch is applied to the records, the batch
is committed to the backend in one transaction, and only then are asks answered, waiters woken,
events published and the scheduler told of new work. So a task is never acknowledged, nor run,
before it is committed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from functools import partial
from typing import Any, cast

import attrs
import trio

from .actor import Actor, Context
from .backends import Backend, SharedBackend, is_shared
from .errors import (
    ActorStopped,
    MailboxFull,
    OncueError,
    StoreUnavailable,
    TaskAlreadyFinished,
    TaskNotFailed,
    TaskNotFinished,
    TaskNotFound,
)
from .guard import FAILURES, BackendGuard, OutageHistory
from .lifecycle import Lifecycle
from .listeners import Listeners
from .mailbox import ActorRef, Envelope, Mailbox
from .messages import (
    CancelTask,
    Claim,
    CloseAdmission,
    DeleteTask,
    GetCounts,
    GetTask,
    Job,
    KeyRef,
    ListTasks,
    LoadQueue,
    ProgressReported,
    Purge,
    Reap,
    Record,
    RemoteCancelled,
    RemoteFinished,
    Renew,
    RetryTask,
    Submit,
    SubmitNowait,
    Subscribe,
    TaskCancelled,
    TasksReady,
    WaitIdle,
    WaitTask,
)
from .record import TaskRecord
from .sharing import SharedState
from .task import TaskEvent, TaskState

logger = logging.getLogger(__name__)

MAX_BATCH = 4096  # messages per transaction: bounds the latency one batch adds
_DEFERRED = object()  # a handler's answer meaning "the reply comes later"


Counts = dict[tuple[str, TaskState], int]


@attrs.define
class StoreLife:
    """What the store's slot remembers across incarnations (the engine keeps one)."""

    loaded: bool = False  # a store has loaded from the backend at least once
    outages: OutageHistory = attrs.field(factory=OutageHistory)  # recent backend outages


class Store(Lifecycle, Actor):
    """Owns the Backend; every task state change goes through here."""

    reply_errors = (OncueError, ValueError, LookupError)

    def __init__(
        self,
        backend: Backend,
        scheduler: ActorRef,
        queue_size: int,
        life: StoreLife,
        node: str | None = None,
    ) -> None:
        self._life = life
        self._node = node  # our name among the engines of a shared backend
        self._backend = backend
        self._guard = BackendGuard(backend, life.outages)
        self._scheduler = scheduler
        self._queue_size = queue_size
        self._unfinished: dict[str, TaskRecord] = {}
        self._counts = defaultdict(int)
        self._number = 0
        self._closed = False
        self._listeners = Listeners()
        self._purge: Purge | None = None
        self._self: ActorRef | None = None
        self._mailbox: Mailbox | None = None  # ours, once running (an outage reads it)
        self._shared = is_shared(backend)
        self._shared_state = SharedState()
        self._handlers: dict[type, Callable[[Any, Envelope], Any]] = {
            Submit: self._submit,
            SubmitNowait: self._submit_nowait,
            Record: self._record,
            ProgressReported: self._progress,
            GetTask: self._get,
            ListTasks: self._list,
            CancelTask: self._cancel,
            DeleteTask: self._delete,
            RetryTask: self._retry,
            WaitTask: self._wait,
            WaitIdle: self._wait_idle,
            GetCounts: self._get_counts,
            Subscribe: self._subscribe,
            CloseAdmission: self._close_admission,
            LoadQueue: self._load_queue,
            Purge: self._request_purge,
            Claim: self._request_claim,
            Renew: self._request_renew,
            Reap: self._request_reap,
            RemoteFinished: self._remote_finished,
            RemoteCancelled: self._remote_cancelled,
        }

    async def run(self, context: Context) -> None:
        if self._life.loaded:
            loaded = await self._guard.load_when_reachable()
        else:
            loaded = await self._guard.load()  # at start-up a broken backend fails at once
            self._life.loaded = True
        unfinished, counts, self._number = loaded
        self._unfinished = {record.id: record for record in unfinished}
        self._counts.update(counts)
        self._self = context.ref
        self._mailbox = context.mailbox
        context.started()
        reason = "the store restarted"
        try:
            await self._serve(context.mailbox)
            reason = ""
        finally:
            self._listeners.end_subscriptions(reason)
        # A graceful stop: the last batch is committed; what we own goes back to the others.
        if self._shared:
            try:
                released = await cast(SharedBackend, self._backend).release()
                logger.info("store.released tasks=%d", released)
            except FAILURES as error:  # their leases expire instead
                logger.warning("store.release_failed error=%r", error)
        await self._backend.close()

    async def _serve(self, mailbox: Mailbox) -> None:
        while True:
            try:
                batch = [await mailbox.receive()]
            except trio.EndOfChannel:
                return
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(mailbox.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            await self._process(batch)

    # -- one batch ---------------------------------------------------------------------------------

    async def _process(self, batch: list[Envelope]) -> None:
        self._changed: dict[str, TaskRecord] = {}
        self._deleted: list[str] = []
        self._ready: list[Job] = []
        self._cancelled: list[str] = []
        self._finished: list[TaskRecord] = []
        self._events: list[TaskEvent] = []
        answers: list[tuple[Envelope, Any, bool]] = []
        for envelope in batch:
            message = envelope.message
            try:
                answer = await self._handlers[type(message)](message, envelope)
            except self.reply_errors as error:
                answers.append((envelope, error, True))
            else:
                if answer is not _DEFERRED:
                    answers.append((envelope, answer, False))
        if self._changed or self._deleted:
            try:
                lost = await self._guard.commit(list(self._changed.values()), self._deleted)
            except FAILURES as error:
                for envelope in batch:
                    envelope.fail(StoreUnavailable(error))
                assert self._mailbox is not None
                await self._guard.outage(self._mailbox, error)
                return
            if lost:
                self._lost(lost)
                answers = await self._mend(answers, set(lost))
        for envelope, answer, is_error in answers:
            if is_error:
                envelope.fail(answer)
            else:
                envelope.reply(answer)
        self._after_commit()
        if self._shared:
            await self._shared_chores()
        if self._purge is not None:
            await self._run_purge(self._purge)

    def _after_commit(self) -> None:
        if self._ready:
            self._tell_scheduler(TasksReady(self._ready))
        for task_id in self._cancelled:
            self._tell_scheduler(TaskCancelled(task_id))
        idle = not self._unfinished and not self._shared  # shared: the chores find out
        self._listeners.committed(self._finished, idle, self._events)

    def _tell_scheduler(self, message: Any) -> None:
        try:
            self._scheduler.try_tell(message)  # the scheduler's mailbox is unbounded
        except ActorStopped:
            logger.debug("store.scheduler_gone message=%s", type(message).__name__)

    # -- operations on one task --------------------------------------------------------------------

    async def _find(self, task_id: str | int | KeyRef) -> TaskRecord:
        if isinstance(task_id, KeyRef):
            record = self._changed_key(task_id.key) or await self._read_key(task_id.key)
        elif isinstance(task_id, int):
            record = await self._read(partial(self._backend.get_by_number, task_id))
        else:
            record = self._unfinished.get(task_id) or await self._read(
                partial(self._backend.get, task_id)
            )
        if record is None:
            raise TaskNotFound(task_id.key if isinstance(task_id, KeyRef) else task_id)
        return record

    async def _get(self, message: GetTask, envelope: Envelope) -> Any:
        return (await self._find(message.id)).snapshot()

    async def _list(self, message: ListTasks, envelope: Envelope) -> Any:
        query = self._backend.query
        records = await self._read(
            partial(
                query, message.state, message.type, message.limit, message.before, message.owner
            )
        )
        return [record.snapshot() for record in records]

    async def _cancel(self, message: CancelTask, envelope: Envelope) -> Any:
        record = await self._find(message.id)
        if record.state.finished:
            raise TaskAlreadyFinished(record.id, record.state.value)
        self._move(record, TaskState.CANCELLED, time.time())
        self._cancelled.append(record.id)
        return record.snapshot()

    async def _delete(self, message: DeleteTask, envelope: Envelope) -> None:
        record = await self._find(message.id)
        if not record.state.finished:
            raise TaskNotFinished(record.id, record.state.value)
        self._counts[record.type, record.state] -= 1
        self._deleted.append(record.id)
        self._changed.pop(record.id, None)

    async def _retry(self, message: RetryTask, envelope: Envelope) -> Any:
        """Re-admit a failed task with a fresh set of attempts (the same rules as a submit)."""
        record = await self._find(message.id)
        if record.state is not TaskState.FAILED:
            raise TaskNotFailed(record.id, record.state.value)
        await self._prepare(0)
        self._check_admission(1)
        for field in ("finished_at", "run_at", "started_at", "result", "error", "worker"):
            setattr(record, field, None)
        record.attempts = 0
        record.progress = None
        if self._shared:
            self._shared_state.created += 1
            self._shared_state.wake = True
        else:
            self._unfinished[record.id] = record
        self._move(record, TaskState.PENDING, time.time())
        if not self._shared:
            self._ready.append(record.job())
        return record.snapshot()

    async def _wait(self, message: WaitTask, envelope: Envelope) -> Any:
        record = await self._find(message.id)
        if record.state.finished:
            return record.snapshot()
        self._listeners.wait_for(record.id, envelope)
        return _DEFERRED

    # -- the whole store ---------------------------------------------------------------------------

    async def _wait_idle(self, message: WaitIdle, envelope: Envelope) -> Any:
        if self._shared:
            if await self._read(cast(SharedBackend, self._backend).unfinished_count) == 0:
                return None
        elif not self._unfinished:
            return None
        self._listeners.wait_idle(envelope)
        return _DEFERRED

    async def _get_counts(self, message: GetCounts, envelope: Envelope) -> Counts:
        counts = await self._read(self._backend.counts) if self._shared else self._counts
        return {key: count for key, count in counts.items() if count}

    async def _subscribe(self, message: Subscribe, envelope: Envelope) -> Any:
        return self._listeners.subscribe(message.capacity)

    async def _request_purge(self, message: Purge, envelope: Envelope) -> None:
        self._purge = message  # runs after this batch commits, so it sees the batch's changes

    async def _run_purge(self, message: Purge) -> None:
        """One purge transaction of its own; if it was full, queue the next batch behind the
        work already waiting, so a large backlog never holds the store for long."""
        self._purge = None
        purged = await self._backend.purge(message.before, message.limit)
        for key, count in purged.items():
            self._counts[key] -= count
        total = sum(purged.values())
        if total:
            logger.info("store.purged tasks=%d before=%.0f", total, message.before)
        if total >= message.limit and self._self is not None:
            with contextlib.suppress(MailboxFull, ActorStopped):  # else the next tick goes on
                self._self.try_tell(message)

    async def _close_admission(self, message: CloseAdmission, envelope: Envelope) -> int:
        self._closed = True
        return len(self._unfinished)

    async def _load_queue(self, message: LoadQueue, envelope: Envelope) -> Any:
        return [(record.job(), record.state) for record in self._unfinished.values()]
