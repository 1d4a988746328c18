"""Submitting: the Engine's submit, submit_nowait, submit_many and admit.

A mixin of the Engine (handle.py), as results.py is. ``submit`` and ``admit`` ask the store
to commit the tasks; ``submit_nowait`` gathers tasks into SubmitNowait messages the store has
not taken yet, so a burst costs one envelope per batch, not one round trip per task.
"""

from __future__ import annotations

import datetime
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..cores.admission import admit
from ..cores.ids import new_task_id
from ..cores.record import TaskRecord
from ..errors import EngineClosed, InvalidField, MailboxFull, UnknownTaskType
from ..messages import Submit, SubmitNowait
from ..registry import Registry
from ..runtime.mailbox import ActorRef
from ..task import Admitted, Submission, Task
from .tracing import end_submit, start_submit

NOWAIT_BATCH = 1000  # tasks one SubmitNowait may gather (the store admits them in one go)
NOWAIT_BACKLOG = 10_000  # tasks submit_nowait() may hand over before the store takes them


class Submitting:
    """Engine methods that hand new tasks to the store."""

    registry: Registry
    _store: ActorRef
    _durable: bool
    _traced: bool
    _shutdown_started: bool
    _nowait_sent: deque[SubmitNowait]  # oldest first; taken ones popped
    _nowait_waiting: int  # tasks in those not yet taken by the store

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
            task.headers = headers
            self._hand_over(task)
        except Exception as error:  # refused: the span says why, the caller gets the error
            end_submit(span, None, error)
            raise
        end_submit(span, task_id)
        return task_id

    def _hand_over(self, task: TaskRecord) -> None:
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

    async def _admit_traced(self, tasks: list[TaskRecord]) -> list[Admitted]:
        """Admit ``tasks`` inside a submit span each, their context in the tasks' headers."""
        spans = []
        for task in tasks:
            span, headers = start_submit(task.type, task.headers)
            spans.append(span)
            task.headers = headers
        try:
            admitted: list[Admitted] = await self._store.ask(Submit(tasks))
        except Exception as error:  # refused (QueueFull, EngineClosed...): every span says so
            for span in spans:
                end_submit(span, None, error)
            raise
        for span, each in zip(spans, admitted, strict=True):
            end_submit(span, each.task.id)
        return admitted
