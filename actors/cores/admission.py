"""Admission at the edge: a Submission checked against its handler becomes a TaskRecord.

Every option error is an InvalidField naming the field; nothing past here validates again.
"""

from __future__ import annotations

import time

from ..errors import InvalidField
from ..registry import Registry
from ..task import Submission, TaskState, check_max_retries, check_timeout, parse_priority
from .ids import new_task_id
from .record import TaskRecord
from .rules import check_headers, check_key, check_one_schedule, encode_payload


def admit(
    registry: Registry, submission: Submission, *, durable: bool, task_id: str | None = None
) -> TaskRecord:
    """Resolve the handler, apply its defaults, check every option; raises InvalidField or
    UnknownTaskType. ``durable``: the payload must also be JSON, and its JSON text (the
    submission's own, or encoded here, once) goes with the task to be committed as it is.

    The record is pending, with its id (``task_id``, else a new one); the store numbers it,
    dates it and starts its history when it admits it."""
    handler = registry.resolve(submission.type)
    # The handler's defaults were checked when it was registered: check only what is given.
    priority, max_retries, timeout = handler.priority, handler.max_retries, handler.timeout
    if submission.priority is not None:
        priority = parse_priority(submission.priority)
    if submission.max_retries is not None:
        max_retries = check_max_retries(submission.max_retries)
    payload_json = None
    if durable:
        payload_json = submission.payload_json
        if payload_json is None:
            payload_json = encode_payload(submission.payload)
    if submission.timeout is not None:
        timeout = check_timeout(submission.timeout)
    at = None
    if submission.delay is not None or submission.run_at is not None:
        at = run_at(submission.delay, submission.run_at)
    key = submission.key
    if key is not None:
        check_key(key)
    record = TaskRecord(  # positional, in the order of its parameters: keywords cost more
        task_id or new_task_id(),
        0,  # number: the store's
        handler.name,
        submission.payload,
        priority,
        TaskState.PENDING,
        0,  # attempts
        max_retries,
        timeout,
        0.0,  # created_at: the store's
        at,
        key,
        submission.owner,
        (),  # history: the store's
        payload_json,
    )
    if submission.headers is not None:  # rare: spare the common path a keyword argument
        record.headers = check_headers(submission.headers)
    return record


def parse_state(state: TaskState | str) -> TaskState:
    try:
        return TaskState(state)
    except ValueError:
        known = ", ".join(s.value for s in TaskState)
        raise InvalidField("state", f"state must be one of {known}, got {state!r}") from None


def run_at(delay: float | None, at: float | None) -> float | None:
    """The wall-clock time a task may run from (None: now), from ``delay`` or ``run_at``."""
    check_one_schedule(delay, at)
    if delay is not None:
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay < 1e9:
            message = f"delay must be a number of seconds >= 0, got {delay!r}"
            raise InvalidField("delay", message)
        return time.time() + delay if delay > 0 else None
    if at is not None and (isinstance(at, bool) or not isinstance(at, int | float) or at < 0):
        message = f"run_at must be a Unix timestamp or a datetime, got {at!r}"
        raise InvalidField("run_at", message)
    return at
