"""Every error response, in one place: `{"error": {"code", "message", "field"?}}`.

Routes raise `ApiError` (or let the engine's errors through); `reply_for` turns each into JSON
with the right status, for Quart's error handlers and the gateway alike, so no route maps
exceptions itself.
"""

from __future__ import annotations

import errno
import logging
from typing import Any

from quart import Quart, Response, request
from werkzeug.exceptions import HTTPException

from oncue.actors import (
    ActorError,
    BackendFull,
    EngineClosed,
    OncueError,
    QueueFull,
    StoreUnavailable,
    TaskAlreadyFinished,
    TaskNotFailed,
    TaskNotFinished,
    TaskNotFound,
    UnknownTaskType,
)
from oncue.actors.errors import BackendReadOnly

from .reply import Reply, json_reply

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 1

# The engine's errors, most specific first (the first class the error is an instance of wins).
ENGINE_ERRORS: list[tuple[type[Exception], int, str]] = [
    (TaskNotFound, 404, "not_found"),
    (TaskAlreadyFinished, 409, "already_finished"),
    (TaskNotFinished, 409, "not_finished"),
    (TaskNotFailed, 409, "not_failed"),
    (UnknownTaskType, 422, "unknown_task_type"),
    (QueueFull, 429, "queue_full"),
    (EngineClosed, 503, "shutting_down"),
    (StoreUnavailable, 503, "unavailable"),
    # The store (or another actor) crashed or stopped mid-call: it is being restarted.
    (ActorError, 503, "unavailable"),
    (ValueError, 422, "invalid_value"),
]

# Fields of request bodies; the engine's ValueErrors open with the name of the bad one.
REQUEST_FIELDS = frozenset(
    {"type", "payload", "priority", "max_retries", "timeout", "delay", "run_at", "key", "count"}
    | {"cursor", "limit", "status"}
)

# Codes for the HTTP errors Quart and werkzeug raise themselves (bad route, method, body).
HTTP_CODES = {
    400: "bad_request",
    404: "route_not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


class ApiError(Exception):
    """An error a route reports to the client: status, a stable code, a message, the field."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.headers = headers or {}


def error_reply(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    """The JSON body every 4xx/5xx carries."""
    error: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        error["field"] = field
    return json_reply({"error": error}, status, headers)


def reply_for(error: Exception, path: str) -> Reply:
    """The answer to `error` raised while handling a request for `path` (the one place that
    maps exceptions: Quart's error handlers and the gateway's direct routes both call it)."""
    if isinstance(error, ApiError):
        return error_reply(error.status, error.code, error.message, error.field, error.headers)
    if isinstance(error, HTTPException):
        return http_error_reply(error)
    if isinstance(error, OncueError | ActorError | ValueError):
        return engine_error_reply(error, path)
    return internal_error_reply(error)


def http_error_reply(error: HTTPException) -> Reply:
    """The HTTP errors Quart and werkzeug raise themselves (bad route, method, body)."""
    status = error.code or 500
    if status >= 500:
        return internal_error_reply(error)
    code = HTTP_CODES.get(status, "http_error")
    message = error.description or error.name
    headers = dict(error.get_headers()) if status == 405 else None
    if headers is not None:
        headers.pop("Content-Type", None)
    return error_reply(status, code, message, headers=headers)


def engine_error_reply(error: Exception, path: str) -> Reply:
    """Map one of the engine's errors to its status code (the single place that does it)."""
    for cls, status, code in ENGINE_ERRORS:
        if isinstance(error, cls):
            retry = status in (429, 503) and code != "shutting_down"
            headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if retry else None
            field = "type" if isinstance(error, UnknownTaskType) else _field_named(error)
            field = getattr(error, "field", None) or field  # InvalidField names it
            index = getattr(error, "index", None)
            if field is not None and index is not None and path.endswith("/batch"):
                field = f"tasks[{index}].{field}"  # which task of the batch
            message = str(error)
            if code == "unavailable":
                logger.warning("http.engine_unavailable", extra={"error": repr(error)})
                message = unavailable_reason(error)
            return error_reply(status, code, message, field, headers)
    return internal_error_reply(error)


def unavailable_reason(error: BaseException) -> str:
    """Why the engine cannot answer, in words for the client: the disk is full where that is
    the cause (the operator's fix), else a fault it is recovering from. The backend's own
    error text goes to the log only."""
    if isinstance(error, StoreUnavailable) and is_disk_full(error.error):
        full = "memory" if "out of memory" in str(error.error) else "disk"  # Redis: memory
        return f"the task store is out of space (its {full} is full); retry once space is freed"
    if isinstance(error, StoreUnavailable) and isinstance(error.error, BackendReadOnly):
        return "the task store refuses writes (read-only, or unable to persist); retry later"
    if isinstance(error, StoreUnavailable):
        return "the task store's backend is failing; retry later"
    return "the task engine is recovering from a fault; retry later"


def is_disk_full(error: BaseException) -> bool:
    """Whether a backend's error is a full disk (BackendFull: SQLite's 'database or disk is
    full', PostgreSQL's DiskFull, Redis out of memory, ENOSPC)."""
    return isinstance(error, BackendFull) or (
        isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT)
    )


def _field_named(error: Exception) -> str | None:
    """The request field a ValueError's message opens with ("timeout must be ..."), if any."""
    first_word = str(error).split(" ", 1)[0]
    return first_word if first_word in REQUEST_FIELDS else None


def internal_error_reply(error: BaseException) -> Reply:
    """A 500 that says nothing of the internals; the traceback goes to the log, once."""
    logger.error("http.unhandled", extra={"error": repr(error)}, exc_info=error)
    return error_reply(500, "internal_error", "internal server error")


def register_error_handlers(app: Quart) -> None:
    """Make every error the app can produce answer with the JSON error body."""

    # Quart looks a handler up along the error's class hierarchy, so this one gets them all
    # (HTTPExceptions included, which it would otherwise answer with HTML).
    @app.errorhandler(Exception)
    async def handle(error: Exception) -> Response:
        return reply_for(error, request.path).response()
