"""What the clients raise: the server's JSON errors as the engine's own exception classes.

The server answers every error with `{"error": {"code", "message", "field"?}}` (http/errors.py).
`error_for` turns such an answer into the class the engine itself would have raised, looked up
by name in `oncue.actors.errors` through one table, so code written against an embedded engine
catches the same things against a server. Answers that have no engine class (401, 403, a rate
limit) raise `RequestRejected`; an answer that is not oncue's JSON raises `NotAnOncueServer`.
"""

from __future__ import annotations

import re
from typing import Any

from oncue.actors import errors as engine_errors

# The server's error codes and the engine classes they stand for, by name (a class missing
# from actors/errors.py falls back to RequestRejected, so a renamed class cannot break this).
ENGINE_CLASSES = {
    "not_found": "TaskNotFound",
    "already_finished": "TaskAlreadyFinished",
    "not_finished": "TaskNotFinished",
    "not_failed": "TaskNotFailed",
    "unknown_task_type": "UnknownTaskType",
    "queue_full": "QueueFull",
    "shutting_down": "EngineClosed",
    "unavailable": "StoreUnavailable",
    "invalid_field": "InvalidField",
    "invalid_value": "InvalidField",
    "payload_too_large": "InvalidField",
}

# Which attribute of the class a request's subject (a task id; a submit's type) fills.
SUBJECT_ATTRIBUTES = {
    "not_found": "task_id",
    "already_finished": "task_id",
    "not_finished": "task_id",
    "not_failed": "task_id",
    "unknown_task_type": "name",
}


class ClientError(engine_errors.OncueError):
    """A client could not get an oncue answer from the server at ``url``."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(message)
        self.url = url


class ServerUnreachable(ClientError, ConnectionError):
    """No connection to ``url`` (refused, unknown host, timed out), after the retries."""


class NotAnOncueServer(ClientError):
    """Something answered at ``url``, but not with oncue's JSON: is it an oncue server?"""


class RequestRejected(ClientError):
    """The server refused the request for a reason the engine has no class for: a missing or
    bad token (401), a scope the token lacks (403), a rate limit (429), a body too large, or
    its own failure (500). ``status``, ``code`` and ``field`` are the server's; ``retry_after``
    is the seconds its Retry-After header asks to wait, if it sent one."""

    def __init__(
        self, url: str, message: str, *, status: int, code: str, field: str | None = None
    ) -> None:
        super().__init__(url, message)
        self.status = status
        self.code = code
        self.field = field
        self.retry_after: float | None = None


def error_for(
    url: str, status: int, body: Any, retry_after: str | None, *, subject: str | None = None
) -> Exception:
    """The exception for an error answer: `body` is its decoded JSON (None if it was not JSON).

    `subject` is what the request was about (a task id; a task type for a submit): it fills
    TaskNotFound.task_id (and the TaskStateError family's) or UnknownTaskType.name.
    """
    detail = body.get("error") if isinstance(body, dict) else None
    if not (isinstance(detail, dict) and isinstance(detail.get("code"), str)):
        return NotAnOncueServer(
            url, f"{url} answered {status} without oncue's JSON error: is it an oncue server?"
        )
    code, message = detail["code"], str(detail.get("message", ""))
    field = detail.get("field") if isinstance(detail.get("field"), str) else None
    seconds = _seconds(retry_after)
    cls = getattr(engine_errors, ENGINE_CLASSES.get(code, ""), None)
    if not (isinstance(cls, type) and issubclass(cls, Exception)):
        rejected = RequestRejected(
            url, f"{url}: {status} {code}: {message}", status=status, code=code, field=field
        )
        rejected.retry_after = seconds
        return rejected
    attributes: dict[str, Any] = {"retry_after": seconds}
    if subject is not None and code in SUBJECT_ATTRIBUTES:
        attributes[SUBJECT_ATTRIBUTES[code]] = subject
    return _engine_error(cls, message, field, attributes)


def _engine_error(
    cls: type[Exception], message: str, field: str | None, attributes: dict[str, Any]
) -> Exception:
    """An instance of the engine's `cls` carrying the server's message and `attributes`.

    Made without calling the class's __init__, whose arguments (a queue size, a task's state)
    the server's answer does not all carry; the attributes the answer does give are set.
    """
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    if field is not None:
        index = re.match(r"tasks\[(\d+)\]\.", field)
        attributes |= {"field": field, "index": None if index is None else int(index[1])}
    state = re.search(r": it is (\w+);", message)
    if state:
        attributes["state"] = state[1]
    known = message.partition("known types: ")[2]
    if known:
        attributes["known"] = known.split(", ")
    for name, value in attributes.items():
        setattr(error, name, value)
    return error


def _seconds(header: str | None) -> float | None:
    """Retry-After as seconds (the server sends delta-seconds), or None."""
    try:
        return None if header is None else max(0.0, float(header))
    except ValueError:
        return None
