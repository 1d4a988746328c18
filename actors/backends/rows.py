"""Task records to database rows and back: the columns SQLite and PostgreSQL share.

A store batch writes each changed task once, so these run per task per transition: they are
kept cheap. A task that exists already is written with ``update_row`` (the columns a
transition can change, the payload untouched); ``to_row`` is the whole row of a new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..cores.jsontext import decode as _decode
from ..cores.jsontext import encode_any, encode_repr, encode_str
from ..cores.record import TaskRecord
from ..task import Progress, TaskError, TaskState, Transition

COLUMNS = (
    "id, number, type, payload, priority, state, attempts, max_retries, timeout, created_at,"
    " run_at, started_at, finished_at, result, error, worker, progress, key, history, owner,"
    " headers"
)
COLUMN_COUNT = COLUMNS.count(",") + 1
# What a transition may change (everything else is fixed when the task is created), in the
# order of update_row after its id.
MUTABLE = (
    "priority",
    "state",
    "attempts",
    "run_at",
    "started_at",
    "finished_at",
    "result",
    "error",
    "worker",
    "progress",
    "history",
)


def dumps(value: Any) -> str:
    """JSON for the database; a value JSON cannot hold is kept as its repr, never a crash."""
    kind = type(value)
    if kind is int:
        return int.__repr__(value)
    if kind is str:
        return encode_str(value)
    try:
        return encode_any(value)
    except (TypeError, ValueError, RecursionError):
        return encode_repr(value)


_STEP = {state: f'["{state.value}",' for state in TaskState}  # a state's words are plain


class _States(dict[str, TaskState]):
    """A state by its value: a dict lookup (TaskState(value) costs ~0.5 us); a value of no
    state raises ValueError, as TaskState(value) does."""

    def __missing__(self, value: str) -> TaskState:
        return TaskState(value)


STATES = _States({state.value: state for state in TaskState})


def finished_since_sql(owner: str | None) -> str:
    """Tasks finished after a moment, oldest first (``?`` for the moment, [owner], limit).

    Read through the index on finished_at that retention's purge already uses."""
    mine = "" if owner is None else " AND owner = ?"
    return f"SELECT {COLUMNS} FROM tasks WHERE finished_at > ?{mine} ORDER BY finished_at LIMIT ?"


def dump_history(history: Sequence[Transition]) -> str:
    """The history as JSON, ``[["pending",1.5],["running",2.5,"worker-1",null],...]``, twice
    as fast as the encoder (a step with no worker nor error is written without them)."""
    if not history:
        return "[]"
    return "[" + "],".join([_dump_step(step) for step in history]) + "]]"


def _dump_step(step: Transition) -> str:
    state, at, worker, error = step
    if worker is None and error is None:
        return _STEP[state] + repr(at)
    worker_json = "null" if worker is None else encode_str(worker)
    error_json = "null" if error is None else encode_str(error)
    return f"{_STEP[state]}{at!r},{worker_json},{error_json}"


def load_history(steps: list[list[Any]]) -> tuple[Transition, ...]:
    """The history from its JSON form (steps of two or four items, see dump_history)."""
    states = STATES
    return tuple([Transition(states[step[0]], *step[1:]) for step in steps])


def to_row(record: TaskRecord) -> tuple[Any, ...]:
    """The whole row of ``record``, in COLUMNS order."""
    error = record.error
    progress = record.progress
    result = record.result
    return (
        record.id,
        record.number,
        record.type,
        dumps(record.payload) if record.payload_json is None else record.payload_json,
        record.priority,
        record.state.value,
        record.attempts,
        record.max_retries,
        record.timeout,
        record.created_at,
        record.run_at,
        record.started_at,
        record.finished_at,
        None if result is None else dumps(result),
        None if error is None else dumps([error.type, error.message, error.traceback]),
        record.worker,
        None if progress is None else dumps([progress.fraction, progress.message]),
        record.key,
        dump_history(record.history),
        record.owner,
        None if record.headers is None else dumps(record.headers),
    )


def update_row(record: TaskRecord) -> tuple[Any, ...]:
    """The id of ``record``, then its MUTABLE columns."""
    error = record.error
    progress = record.progress
    result = record.result
    return (
        record.id,
        record.priority,
        record.state.value,
        record.attempts,
        record.run_at,
        record.started_at,
        record.finished_at,
        None if result is None else dumps(result),
        None if error is None else dumps([error.type, error.message, error.traceback]),
        record.worker,
        None if progress is None else dumps([progress.fraction, progress.message]),
        dump_history(record.history),
    )


def from_row(row: tuple[Any, ...]) -> TaskRecord:
    """The record a row in COLUMNS order holds."""
    (
        id_,
        number,
        type_,
        payload,
        priority,
        state,
        attempts,
        max_retries,
        timeout,
        created_at,
        run_at,
        started_at,
        finished_at,
        result,
        error,
        worker,
        progress,
        key,
        history,
        owner,
        headers,
    ) = row
    return TaskRecord(
        id=id_,
        number=number,
        type=type_,
        payload=_decode(payload),
        priority=priority,
        state=TaskState(state),
        attempts=attempts,
        max_retries=max_retries,
        timeout=timeout,
        created_at=created_at,
        run_at=run_at,
        started_at=started_at,
        finished_at=finished_at,
        result=None if result is None else _decode(result),
        error=None if error is None else TaskError(*_decode(error)),
        worker=worker,
        progress=None if progress is None else Progress(*_decode(progress)),
        key=key,
        history=load_history(_decode(history)),
        owner=owner,
        headers=None if headers is None else _decode(headers),
    )
