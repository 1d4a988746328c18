"""Admission at the edge: a Submission checked against its handler becomes a NewTask.

Every option error is an InvalidField naming the field; nothing past here validates again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from .errors import InvalidField
from .record import NewTask
from .registry import Registry
from .task import Submission, TaskState, check_max_retries, check_timeout, parse_priority

MAX_KEY_LENGTH = 200
MAX_HEADERS = 32
MAX_HEADER_VALUE = 1024


def admit(
    registry: Registry, submission: Submission, *, durable: bool, task_id: str | None = None
) -> NewTask:
    """Resolve the handler, apply its defaults, check every option; raises InvalidField or
    UnknownTaskType. ``durable``: the payload must also be JSON."""
    handler = registry.resolve(submission.type)
    # The handler's defaults were checked when it was registered: check only what is given.
    priority, max_retries, timeout = handler.priority, handler.max_retries, handler.timeout
    if submission.priority is not None:
        priority = parse_priority(submission.priority)
    if submission.max_retries is not None:
        max_retries = check_max_retries(submission.max_retries)
    if durable:
        check_json(submission.payload)
    if submission.timeout is not None:
        timeout = check_timeout(submission.timeout)
    at = None
    if submission.delay is not None or submission.run_at is not None:
        at = run_at(submission.delay, submission.run_at)
    return NewTask(
        handler.name,
        submission.payload,
        priority,
        max_retries,
        timeout,
        at,
        check_key(submission.key),
        submission.owner,
        task_id,
        check_headers(submission.headers),
    )


def check_headers(headers: Any) -> dict[str, str] | None:
    """A task's headers: at most MAX_HEADERS string pairs, names of 1-100 characters, values
    of at most MAX_HEADER_VALUE characters; raises InvalidField naming the problem."""
    if headers is None:
        return None
    if not isinstance(headers, Mapping):
        raise InvalidField("headers", f"headers must be an object of strings, got {headers!r}")
    if len(headers) > MAX_HEADERS:
        message = f"headers may hold at most {MAX_HEADERS} entries, got {len(headers)}"
        raise InvalidField("headers", message)
    for name, value in headers.items():
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise InvalidField("headers", f"a header name is 1-100 characters, got {name!r}")
        if not isinstance(value, str) or len(value) > MAX_HEADER_VALUE:
            message = f"header {name!r} must be a string of at most {MAX_HEADER_VALUE} characters"
            raise InvalidField("headers", message)
    return dict(headers) or None


def parse_state(state: TaskState | str) -> TaskState:
    try:
        return TaskState(state)
    except ValueError:
        known = ", ".join(s.value for s in TaskState)
        raise InvalidField("state", f"state must be one of {known}, got {state!r}") from None


def run_at(delay: float | None, at: float | None) -> float | None:
    """The wall-clock time a task may run from (None: now), from ``delay`` or ``run_at``."""
    if delay is not None and at is not None:
        raise InvalidField("delay", "give delay or run_at, not both")
    if delay is not None:
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not 0 <= delay < 1e9:
            message = f"delay must be a number of seconds >= 0, got {delay!r}"
            raise InvalidField("delay", message)
        return time.time() + delay if delay > 0 else None
    if at is not None and (isinstance(at, bool) or not isinstance(at, int | float) or at < 0):
        message = f"run_at must be a Unix timestamp or a datetime, got {at!r}"
        raise InvalidField("run_at", message)
    return at


def check_json(payload: Any) -> None:
    try:
        json.dumps(payload)
    except (TypeError, ValueError) as error:
        message = f"payload must be a JSON value for a durable store: {error}"
        raise InvalidField("payload", message) from None


def check_key(key: str | None) -> str | None:
    if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH):
        message = f"key must be a string of 1 to {MAX_KEY_LENGTH} characters, got {key!r}"
        raise InvalidField("key", message)
    return key
