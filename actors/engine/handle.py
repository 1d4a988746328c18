"""Engine: the handle on a running engine that callers use (open_engine() makes it).

It holds no task records: every call is a message to the store or the scheduler. Its only
state is its own: whether shutdown began, and the submit_nowait batches the store has not taken.
"""

from __future__ import annotations

import builtins
import datetime
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import trio

from ..cores.admission import admit, parse_state
from ..cores.ids import new_task_id
from ..cores.record import NewTask
from ..errors import (
    ActorCrashed,
    ActorError,
    EngineClosed,
    InvalidField,
    MailboxFull,
    StoreUnavailable,
    TaskNotFound,
    UnknownTaskType,
)
from ..messages import (
    CancelTask,
    ChangedSince,
    CloseAdmission,
    DeleteTask,
    Drain,
    GetCounts,
    GetLoad,
    GetTask,
    KeyRef,
    ListTasks,
    Load,
    LoadQueue,
    RetryTask,
    SetPaused,
    Submit,
    SubmitNowait,
    WaitDrained,
    WaitIdle,
    WaitTask,
)
from ..registry import Registry
from ..runtime.events import LifecycleEvent
from ..runtime.mailbox import ActorRef
from ..runtime.tree import SupervisorRef
from ..task import (
    Admitted,
    Page,
    ShutdownReport,
    Stats,
    Submission,
    Task,
    TaskEvent,
    TaskState,
    WorkerInfo,
)
from .pool import WorkerPool
from .results import BulkResults
from .subscription import EventStream
from .tracing import end_submit, start_submit
from .watch import ActorInfo, Feed, FeedStream

logger = logging.getLogger(__name__)

MAX_LIST_LIMIT = 1000
ASK_BOUND = 5.0  # seconds shutdown waits for any one answer from an actor
WAIT_RETRIES = 3  # times a wait is asked again after the store restarted under it
NOWAIT_BATCH = 1000  # tasks one SubmitNowait may gather (the store admits them in one go)
NOWAIT_BACKLOG = 10_000  # tasks submit_nowait() may hand over before the store takes them


class Engine(BulkResults):
    """The handle on a running engine (made by :func:`open_engine`; pass it around)."""

    def __init__(
        self,
        *,
        registry: Registry,
        store: ActorRef,
        scheduler: ActorRef,
        workers: SupervisorRef,
        pool: WorkerPool,
        grace: float,
        durable: bool,
        node: str | None = None,
        traced: bool = False,
        root: SupervisorRef | None = None,
        feed: Feed | None = None,
        retention: float | None = None,
        remote: Feed | None = None,
    ) -> None:
        self.registry = registry
        self.retention = retention  # seconds finished tasks are kept (None: forever)
        self._root = root
        self._feed = feed or Feed()
        self._remote = remote or Feed()
        self.node = node  # this engine's name among those sharing its store (None: not shared)
        self._traced = traced  # tracing.active() when the engine opened (a check costs ~1 us)
        self._store = store
        self._scheduler = scheduler
        self._workers = workers
        self._pool = pool
        self._grace = grace
        self._durable = durable
        self._resize_lock = trio.Lock()
        self._shutdown_started = False
        self._shutdown_done = trio.Event()
        self._report: ShutdownReport | None = None
        self._nowait_sent: deque[SubmitNowait] = deque()  # oldest first; taken ones popped
        self._nowait_waiting = 0  # tasks in those not yet taken by the store

    @property
    def durable(self) -> bool:
        """True when tasks outlive the process (any store but memory://)."""
        return self._durable

    @property
    def closing(self) -> bool:
        """True once shutdown has begun: no new task is admitted."""
        return self._shutdown_started

    # -- submitting --------------------------------------------------------------------------------

    async def submit(
        self,
        type: str | Callable[..., Any],
        payload: Any = None,
        *,
        priority: int | str | None = None,
        max_retries: int | None = None,
        timeout: float | None = None,
        delay: float | None = None,
        run_at: float | datetime.datetime | None = None,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Task:
        """Submit one task; returns it pending (or the existing task with the same ``key``).

        Raises UnknownTaskType, QueueFull (nothing added), EngineClosed, or ValueError naming a
        bad option. ``type`` may be the name or the decorated handler itself. ``headers``:
        string metadata every attempt sees (``job.headers``), where the trace context travels.
        """
        submission = self._submission(
            type, payload, priority, max_retries, timeout, delay, run_at, key, headers
        )
        return (await self.admit([submission]))[0].task

    def submit_nowait(
        self,
        type: str | Callable[..., Any],
        payload: Any = None,
        *,
        priority: int | str | None = None,
        max_retries: int | None = None,
        timeout: float | None = None,
        delay: float | None = None,
        run_at: float | datetime.datetime | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> str:
        """Hand one task to the store without waiting for its commit; return its id at once.

        For a producer that submits one task at a time and need not wait for each: its tasks
        reach the store in batches instead of one round trip each. Not yet committed when this
        returns, but the store's mailbox keeps order: a later ``get`` or ``wait`` finds it.
        A task the store cannot admit (queue full, shutting down) is recorded failed with that
        error: nothing is dropped silently. No idempotency key here: use :meth:`submit`.

        Raises trio.WouldBlock (MailboxFull) while the store's mailbox is full, or 10,000
        tasks handed over are not yet taken by the store: await something (``submit``
        itself, or a checkpoint) and try again. Also EngineClosed, UnknownTaskType and
        InvalidField, as :meth:`submit`.
        """
        if self._shutdown_started:
            raise EngineClosed()
        submission = self._submission(
            type, payload, priority, max_retries, timeout, delay, run_at, None, headers
        )
        task_id = new_task_id()
        task = admit(self.registry, submission, durable=self._durable, task_id=task_id)
        if not self._traced:
            self._hand_over(task)
            return task_id
        span, headers = start_submit(task.type, task.headers)
        try:
            self._hand_over(task._replace(headers=headers))
        except Exception as error:  # refused: the span says why, the caller gets the error
            end_submit(span, None, error)
            raise
        end_submit(span, task_id)
        return task_id

    def _hand_over(self, task: NewTask) -> None:
        """Add ``task`` to the last SubmitNowait the store has not taken yet, or send a new one
        (MailboxFull if the store's mailbox is full, or NOWAIT_BACKLOG tasks are waiting)."""
        sent = self._nowait_sent
        while sent and sent[0].taken:  # the store takes them in order
            self._nowait_waiting -= len(sent.popleft().tasks)
        if self._nowait_waiting >= NOWAIT_BACKLOG:
            raise MailboxFull(self._store.path)
        if sent and len(sent[-1].tasks) < NOWAIT_BATCH:
            sent[-1].tasks.append(task)
        else:
            message = SubmitNowait([task])
            self._store.try_tell(message)
            sent.append(message)
        self._nowait_waiting += 1

    def _submission(
        self,
        type: str | Callable[..., Any],
        payload: Any,
        priority: int | str | None,
        max_retries: int | None,
        timeout: float | None,
        delay: float | None,
        run_at: float | datetime.datetime | None,
        key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Submission:
        """The keyword form of submit() as a Submission (a handler given by itself, by name)."""
        name = type if isinstance(type, str) else self.registry.resolve(type).name
        at = run_at.timestamp() if isinstance(run_at, datetime.datetime) else run_at
        return Submission(
            name, payload, priority, max_retries, timeout, delay, at, key, headers=headers
        )

    async def submit_many(self, submissions: Iterable[Submission]) -> list[Task]:
        """Submit several tasks, all or none; raises like :meth:`submit`."""
        return [admitted.task for admitted in await self.admit(submissions)]

    async def admit(self, submissions: Iterable[Submission]) -> list[Admitted]:
        """Like :meth:`submit_many`, saying for each task whether it is new (False: same key)."""
        if self._shutdown_started:
            raise EngineClosed()
        tasks = []
        for index, each in enumerate(submissions):
            try:
                tasks.append(admit(self.registry, each, durable=self._durable))
            except (InvalidField, UnknownTaskType) as error:
                error.index = index  # which submission of a batch it is about
                raise
        if not tasks:
            return []
        if self._traced:
            return await self._admit_traced(tasks)
        admitted: list[Admitted] = await self._store.ask(Submit(tasks))
        return admitted

    async def _admit_traced(self, tasks: list[NewTask]) -> list[Admitted]:
        """Admit ``tasks`` inside a submit span each, their context in the tasks' headers."""
        spans = []
        for index, task in enumerate(tasks):
            span, headers = start_submit(task.type, task.headers)
            spans.append(span)
            tasks[index] = task._replace(headers=headers)
        try:
            admitted: list[Admitted] = await self._store.ask(Submit(tasks))
        except Exception as error:  # refused (QueueFull, EngineClosed...): every span says so
            for span in spans:
                end_submit(span, None, error)
            raise
        for span, each in zip(spans, admitted, strict=True):
            end_submit(span, each.task.id)
        return admitted

    # -- reading -----------------------------------------------------------------------------------

    async def get(self, task_id: str | int) -> Task:
        """The task with this id (or number); raises TaskNotFound."""
        if isinstance(task_id, int) and not 0 < task_id < 2**63:
            raise TaskNotFound(task_id)
        task: Task = await self._store.ask(GetTask(task_id))
        return task

    async def get_by_key(self, key: str) -> Task:
        """The task submitted with this idempotency key; raises TaskNotFound."""
        task: Task = await self._store.ask(GetTask(KeyRef(key)))
        return task

    async def list(
        self,
        *,
        state: TaskState | str | None = None,
        type: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        owner: str | None = None,
    ) -> Page:
        """Tasks newest first, filtered; pass ``next_cursor`` back for the next page."""
        if state is not None:
            state = parse_state(state)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            message = f"limit must be an int from 1 to {MAX_LIST_LIMIT}, got {limit!r}"
            raise InvalidField("limit", message)
        before = None
        if cursor is not None:
            # a task number: what a 64-bit column holds (a larger one is no earlier page's)
            valid = isinstance(cursor, str) and cursor.isascii() and cursor.isdigit()
            before = int(cursor) if valid else -1
            if not 0 <= before < 2**63:
                raise InvalidField(
                    "cursor", f"cursor must be a next_cursor from an earlier page, got {cursor!r}"
                )
        tasks: builtins.list[Task] = await self._store.ask(
            ListTasks(state, type, limit, before, owner)
        )
        next_cursor = str(tasks[-1].number) if len(tasks) == limit else None
        return Page(tasks, next_cursor)

    async def changed_since(
        self, after: float, *, owner: str | None = None, limit: int = 10_000
    ) -> tuple[builtins.list[Task], bool]:
        """The tasks that may have a transition after ``after`` (wall-clock seconds): every
        unfinished task and those finished since (their ``history`` says what happened when).

        Returns them and whether that is all (False: more than ``limit`` unfinished, or more
        than ``limit`` finished since). Tasks deleted or purged since are not there.
        """
        found: tuple[builtins.list[Task], bool] = await self._store.ask(
            ChangedSince(after, limit, owner)
        )
        return found

    async def wait(self, task_id: str | int) -> Task:
        """Wait until the task is finished and return it; raises TaskNotFound.

        Waits as long as it takes: bound it with a cancel scope, as every trio call is
        (``with trio.fail_after(30): await engine.wait(id)`` raises trio.TooSlowError). A wait
        given up on this way leaves nothing behind in the store.
        """
        task: Task = await self._ask_store(WaitTask(_id(await self._resolve(task_id))))
        return task

    async def _resolve(self, task_id: str | int) -> str | int:
        return (await self.get(task_id)).id if isinstance(task_id, int) else task_id

    async def wait_idle(self) -> None:
        """Return once no task is queued, delayed, retrying or running."""
        await self._ask_store(WaitIdle())

    async def stats(self) -> Stats:
        counts: dict[tuple[str, TaskState], int] = await self._store.ask(GetCounts())
        load: Load = await self._scheduler.ask(GetLoad())
        by_state = {state.value: 0 for state in TaskState}
        by_type: dict[str, dict[str, int]] = {}
        for (task_type, state), count in counts.items():
            by_state[state.value] += count
            by_type.setdefault(task_type, {})[state.value] = count
        return Stats(
            total_processed=by_state["completed"] + by_state["failed"],
            successful=by_state["completed"],
            failed=by_state["failed"],
            cancelled=by_state["cancelled"],
            queue_length=by_state["pending"] + by_state["retrying"],
            running=by_state["running"],
            by_state=by_state,
            by_type=by_type,
            workers_busy=load.busy,
            workers_idle=load.idle,
            paused=load.paused,
        )

    async def workers(self) -> builtins.list[WorkerInfo]:
        """Each worker: name, state (idle, busy, restarting...), current task, tasks done."""
        children = await self._workers.children()
        load: Load = await self._scheduler.ask(GetLoad())
        infos = []
        for child in children:
            current = load.current.get(child.name)
            state = child.state.value
            if state == "running":
                state = "busy" if current is not None else "idle"
            error = None if child.last_error is None else repr(child.last_error)
            done = load.done.get(child.name, 0)
            infos.append(WorkerInfo(child.name, state, current, done, child.restarts, error))
        return infos

    def events(self, capacity: int = 1000) -> EventStream:
        """Every task transition, as an async iterator.

        ``async with engine.events() as stream:`` subscribes on entry, so nothing that
        happens after it is missed; a bare ``async for event in engine.events()`` subscribes
        at its first step. Raises EventsDropped once it falls more than ``capacity`` events
        behind; an abandoned stream is dropped the same way, so it costs nothing for long.
        """
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an int >= 1, got {capacity!r}")
        return EventStream(self._store, capacity)

    def supervision_events(self, capacity: int = 100) -> FeedStream[LifecycleEvent]:
        """The supervision tree's lifecycle events (crashed, restarted, gave up...), as an
        async iterator, subscribed at once; raises EventsDropped like :meth:`events`."""
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an int >= 1, got {capacity!r}")
        return FeedStream(self._feed, capacity)

    def remote_events(self, capacity: int = 1000) -> FeedStream[TaskEvent]:
        """On a shared store, the transitions the other nodes make (relay.py), as an async
        iterator subscribed at once; on any other store it yields nothing until the engine
        stops. Best effort across nodes; raises EventsDropped like :meth:`events`."""
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be an int >= 1, got {capacity!r}")
        return FeedStream(self._remote, capacity)

    async def tree(self) -> builtins.list[ActorInfo]:
        """Every actor of the engine's supervision tree, depth first: path, state, restarts."""
        if self._root is None:
            return []
        actors = []
        for child in await self._root.children():
            actors.append(ActorInfo.of(child))
            if child.name == "workers":
                actors.extend(ActorInfo.of(worker) for worker in await self._workers.children())
        return actors

    # -- changing ----------------------------------------------------------------------------------

    async def cancel(self, task_id: str | int) -> Task:
        """Cancel an unfinished task (interrupting it if running); returns it cancelled.

        Raises TaskNotFound, or TaskAlreadyFinished for a finished task.
        """
        task: Task = await self._store.ask(CancelTask(_id(await self._resolve(task_id))))
        return task

    async def delete(self, task_id: str | int) -> None:
        """Forget a finished task; raises TaskNotFound or TaskNotFinished."""
        await self._store.ask(DeleteTask(_id(await self._resolve(task_id))))

    async def retry(self, task_id: str | int) -> Task:
        """Queue a failed task again (a fresh set of attempts); raises TaskNotFailed."""
        task: Task = await self._store.ask(RetryTask(_id(await self._resolve(task_id))))
        return task

    async def pause(self) -> None:
        """Stop handing out work; submissions are still admitted."""
        await self._scheduler.ask(SetPaused(True))

    async def resume(self) -> None:
        await self._scheduler.ask(SetPaused(False))

    async def resize(self, workers: int) -> None:
        """Grow or shrink the worker pool; a removed worker finishes its task first (grace)."""
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise ValueError(f"workers must be an int >= 0, got {workers!r}")
        async with self._resize_lock:
            children = await self._workers.children()
            numbers = sorted(int(child.name.rsplit("-", 1)[1]) for child in children)
            first_new = max(numbers, default=0) + 1
            for number in range(first_new, first_new + workers - len(numbers)):
                await self._workers.start_child(self._pool.add(number))
            for number in reversed(numbers[workers:]):
                await self._workers.stop_child(f"worker-{number}")
                self._pool.remove(number)
        logger.info("engine.resized", extra={"workers": workers})

    async def shutdown(self, grace: float | None = None) -> ShutdownReport:
        """Stop admitting, let running tasks finish within ``grace``, then interrupt them.

        Interrupted and queued tasks stay unfinished (pending, or retrying with their run_at):
        a durable store resumes them at the next start; the memory store reports them here and
        in the log. Takes at most ``grace`` plus a few seconds, whatever state the tree is in.
        Idempotent: a second call waits for the first and returns the same report.
        """
        if self._shutdown_started:
            await self._shutdown_done.wait()
            assert self._report is not None
            return self._report
        self._shutdown_started = True
        grace = self._grace if grace is None else grace
        interrupted, unfinished = 0, []
        try:
            interrupted = await self._drain(grace)
            with trio.fail_after(ASK_BOUND):
                unfinished = [job.id for job, _ in await self._store.ask(LoadQueue())]
        except (ActorError, StoreUnavailable, trio.TooSlowError) as error:  # failing or stopped
            logger.warning("engine.shutdown_incomplete", extra={"error": repr(error)})
        finally:
            self._report = ShutdownReport(unfinished, interrupted)
            self._shutdown_done.set()
        logger.info(
            "engine.shutdown", extra={"interrupted": interrupted, "unfinished": len(unfinished)}
        )
        if unfinished and not self._durable:
            shown = ",".join(unfinished[:20])
            logger.warning(
                "engine.shutdown_lost",
                extra={"unfinished": len(unfinished), "store": "memory", "ids": shown},
            )
        return self._report

    async def _drain(self, grace: float) -> int:
        """Close admission, stop dispatch, wait ``grace`` for running tasks, then interrupt them;
        return how many were interrupted."""
        with trio.fail_after(ASK_BOUND):
            try:
                await self._store.ask(CloseAdmission())
            except StoreUnavailable as error:  # a backend outage: drain the workers anyway
                logger.warning("engine.shutdown_admission_open", extra={"error": repr(error)})
            await self._scheduler.ask(Drain(interrupt=False))
        with trio.move_on_after(grace) as waited:
            await self._scheduler.ask(WaitDrained())
        if not waited.cancelled_caught:
            return 0
        with trio.fail_after(ASK_BOUND):
            interrupted: int = await self._scheduler.ask(Drain(interrupt=True))
        with trio.move_on_after(ASK_BOUND):
            await self._scheduler.ask(WaitDrained())
        return interrupted

    async def _ask_store(self, message: WaitTask | WaitIdle) -> Any:
        """Ask the store to wait, asking again (a few times) if it restarts meanwhile."""
        for _ in range(WAIT_RETRIES):
            try:
                return await self._store.ask(message)
            except ActorCrashed:
                logger.info("engine.store_restarted", extra={"reply": type(message).__name__})
        return await self._store.ask(message)


def _id(task_id: str | int) -> str:
    return str(task_id)
