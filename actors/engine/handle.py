"""Engine: the handle on a running engine that callers use (open_engine() makes it).

It holds no task records: every call is a message to the store or the scheduler. Its only
state is its own: whether shutdown began, and the submit_nowait batches the store has not taken.
This module reads, changes one task and observes; the rest are mixins: submitting.py (submit,
submit_nowait, admit), results.py (many results at once), running.py (pause, resize, shutdown).
"""

from __future__ import annotations

import builtins
import logging
from collections import deque
from typing import Any

import trio

from ..cores.admission import parse_state
from ..cores.tally import Tally
from ..errors import ActorCrashed, InvalidField, TaskNotFound
from ..messages import (
    CancelTask,
    ChangedSince,
    DeleteTask,
    GetCounts,
    GetLoad,
    GetTally,
    GetTask,
    KeyRef,
    ListTasks,
    Load,
    RetryTask,
    SubmitNowait,
    WaitIdle,
    WaitTask,
)
from ..registry import Registry
from ..runtime.events import LifecycleEvent
from ..runtime.mailbox import ActorRef
from ..runtime.tree import SupervisorRef
from ..task import Page, ShutdownReport, Stats, Task, TaskEvent, TaskState, WorkerInfo
from .introspection import EngineStatistics
from .pool import WorkerPool
from .results import BulkResults
from .running import Running
from .submitting import NO_ANSWER_YET, Submitting
from .subscription import EventStream
from .watch import ActorInfo, Feed, FeedStream

logger = logging.getLogger(__name__)

MAX_LIST_LIMIT = 1000
WAIT_RETRIES = 3  # times a wait is asked again after the store restarted under it


class Engine(Submitting, BulkResults, Running):
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
        queue_size: int | None = None,
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
        # (queue_size, unfinished) at the store's last look; before it, the configured bound
        # (a first burst of submit_nowait raises QueueFull at it instead of failing tasks)
        self._nowait_admission = NO_ANSWER_YET if queue_size is None else (queue_size, 0)

    @property
    def durable(self) -> bool:
        """True when tasks outlive the process (any store but memory://)."""
        return self._durable

    @property
    def closing(self) -> bool:
        """True once shutdown has begun: no new task is admitted."""
        return self._shutdown_started

    def statistics(self) -> EngineStatistics:
        """This engine's plumbing now: mailbox depths, pool size, submit_nowait backlog.

        Synchronous and local (trio's ``statistics()`` convention); task counts are the store's
        answer: ``await engine.stats()``.
        """
        return EngineStatistics(
            node=self.node,
            durable=self._durable,
            closing=self._shutdown_started,
            workers=self._pool.size,
            nowait_pending=sum(len(m.tasks) for m in self._nowait_sent if not m.taken),
            store=self._store.statistics(),
            scheduler=self._scheduler.statistics(),
        )

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
        """Counts by state and by type, the waiting tasks by priority, the workers' load."""
        counts: dict[tuple[str, TaskState], int]
        queued: dict[int, int]
        counts, queued = await self._store.ask(GetCounts())
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
            queued_by_priority=dict(sorted(queued.items(), reverse=True)),
        )

    async def tally(self) -> Tally:
        """What this engine did since it started: transitions by (task type, state entered),
        and each type's attempts' run times as a histogram (what /metrics exports). Counted
        as the store commits, so reading it costs one message, whatever the rate of tasks."""
        tally: Tally = await self._store.ask(GetTally())
        return tally

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
