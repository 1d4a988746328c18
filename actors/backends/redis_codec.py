"""A task as the Redis backend stores it: a hash of strings, JSON where SQLite has JSON.

``encode`` builds one record's part of the commit script's ARGV (see redis_lua.COMMIT);
``decode`` reads a hash back, as HGETALL returns it inside a script (a flat list).
"""

from __future__ import annotations

from json import loads

from ..cores.record import TaskRecord
from ..task import Progress, TaskError
from .rows import STATES, dump_history, dumps, load_history

# Fields that may be None: written when set, deleted when None (a retry clears its error).
OPTIONAL = ("run_at", "started_at", "finished_at", "result", "error", "worker", "progress")


def rank(record: TaskRecord) -> str:
    """The task's member in the ready set: lexical order is priority high first, then number."""
    return f"{(2**63 - 1 - record.priority):016x}{record.number:016x}{record.id}"


def encode(record: TaskRecord, lease: float, *, full: bool = True) -> list[str]:
    """The record as commit's ARGV: the count of pairs, which OPTIONAL fields are absent (one
    '1' or '0' each, in order), whether it is whole, then the field/value pairs. Not ``full``:
    only what a transition changes (the row exists; the payload, its rank and its lease,
    which never change, are not sent again). JSON as SQLite stores it."""
    flat = ["id", record.id, "priority", str(record.priority), "state", record.state.value]
    flat += ["attempts", str(record.attempts), "history", dump_history(record.history)]
    if full:
        flat += ["rank", rank(record), "lease", repr(lease), "number", str(record.number)]
        payload = dumps(record.payload) if record.payload_json is None else record.payload_json
        flat += ["type", record.type, "payload", payload, "max_retries", str(record.max_retries)]
        flat += ["timeout", repr(record.timeout), "created_at", repr(record.created_at)]
        if record.key is not None:
            flat += ["key", record.key]
        if record.owner is not None:
            flat += ["owner", record.owner]
        if record.headers is not None:
            flat += ["headers", dumps(record.headers)]
    if record.node is not None:
        flat += ["node", record.node]
    absent = ""
    for name, value in zip(OPTIONAL, _optional(record), strict=True):
        if value is None:
            absent += "1"
        else:
            absent += "0"
            flat += [name, value]
    return [str(len(flat) // 2), absent, "1" if full else "0", *flat]


def _optional(record: TaskRecord) -> tuple[str | None, ...]:
    error, progress = record.error, record.progress
    return (
        None if record.run_at is None else repr(record.run_at),
        None if record.started_at is None else repr(record.started_at),
        None if record.finished_at is None else repr(record.finished_at),
        None if record.result is None else dumps(record.result),
        None if error is None else dumps([error.type, error.message, error.traceback]),
        record.worker,
        None if progress is None else dumps([progress.fraction, progress.message]),
    )


def decode(flat: list[str]) -> TaskRecord:
    """A task from its hash, as HGETALL inside a script returns it (a flat list). Its payload's
    JSON text is kept beside it (``payload_json``), so writing it whole again sends that text."""
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    get = fields.get
    result, error, progress = get("result"), get("error"), get("progress")
    headers, payload = get("headers"), get("payload", "null")
    run_at, started_at, finished_at = get("run_at"), get("started_at"), get("finished_at")
    return TaskRecord(
        get("id", ""),
        int(get("number", 0)),
        get("type", ""),
        loads(payload),
        int(get("priority", 0)),
        STATES[fields["state"]],
        int(get("attempts", 0)),
        int(get("max_retries", 0)),
        float(get("timeout", 0)),
        float(get("created_at", 0)),
        None if run_at is None else float(run_at),
        get("key"),
        get("owner"),
        load_history(loads(get("history", "[]"))),
        payload,
        None if started_at is None else float(started_at),
        None if finished_at is None else float(finished_at),
        None if result is None else loads(result),
        None if error is None else TaskError(*loads(error)),
        get("worker"),
        None if progress is None else Progress(*loads(progress)),
        get("node"),
        None if headers is None else loads(headers),
    )
