"""A task as the Redis backend stores it (layout 2): a small hash whose record is two values.

``task:<id>`` holds what the scripts read one by one (``state``, ``node``, ``lease``,
``rank``, ``type``, ``number``, and ``owner`` and ``key`` when set), and the record itself as
two JSON texts the scripts never parse on their hot paths:

- ``fixed``, written once with the task: ``[priority,id,number,type,max_retries,timeout,
  created_at,key,owner,headers]``, a newline, then the payload's JSON text (kept as the
  record's ``payload_json``, so writing it whole again sends that text);
- ``live``, written by every transition: ``[attempts,run_at,started_at,finished_at,result,
  error,worker,progress,history]``, the history last, so a script appends a step to it as
  text (redis_lua.append_step) and reads ``run_at`` from its head.

``encode`` builds one record's part of the commit script's ARGV (see redis_lua.COMMIT);
``decode`` reads the four values ``FIELDS`` names back (HMGET, in a script or a pipeline).
"""

from __future__ import annotations

from json import loads

from ..cores.jsontext import encode_any, encode_str
from ..cores.record import TaskRecord
from ..task import Progress, TaskError
from .rows import STATES, dump_history, dumps, load_history

LAYOUT = 2  # the key layout this code reads and writes (``P layout``; redis_lua.LAYOUT)
FIELDS = ("state", "node", "fixed", "live")  # what decode reads, in this order
_PLAIN = frozenset({"inf", "-inf", "nan"})


def rank(record: TaskRecord) -> str:
    """The task's member in the ready set: lexical order is priority high first, then number."""
    return f"{(2**63 - 1 - record.priority):016x}{record.number:016x}{record.id}"


def _number(value: float) -> str:
    """A float as JSON text (infinities and NaN as JavaScript writes them, which loads reads)."""
    text = repr(value)
    return encode_any(value) if text in _PLAIN else text


def _string(value: str | None) -> str:
    return "null" if value is None else encode_str(value)


def fixed(record: TaskRecord) -> str:
    """What never changes after the task is written: its header, a newline, its payload."""
    payload = dumps(record.payload) if record.payload_json is None else record.payload_json
    headers = "null" if record.headers is None else dumps(record.headers)
    return (
        f"[{record.priority},{encode_str(record.id)},{record.number},{encode_str(record.type)},"
        f"{record.max_retries},{_number(record.timeout)},{_number(record.created_at)},"
        f"{_string(record.key)},{_string(record.owner)},{headers}]\n{payload}"
    )


def live(record: TaskRecord) -> str:
    """What a transition may change, as one JSON array, the history last."""
    error, progress, result = record.error, record.progress, record.result
    run_at, started_at, finished_at = record.run_at, record.started_at, record.finished_at
    return (
        f"[{record.attempts},"
        f"{'null' if run_at is None else _number(run_at)},"
        f"{'null' if started_at is None else _number(started_at)},"
        f"{'null' if finished_at is None else _number(finished_at)},"
        f"{'null' if result is None else dumps(result)},"
        f"{'null' if error is None else dumps([error.type, error.message, error.traceback])},"
        f"{_string(record.worker)},"
        f"{'null' if progress is None else dumps([progress.fraction, progress.message])},"
        f"{dump_history(record.history)}]"
    )


def encode(record: TaskRecord, lease: float, *, full: bool = True) -> list[str]:
    """The record as commit's ARGV, positional: flags (whole '1' or a transition '0', then
    whether node, run_at, finished_at, key, owner are set, '1' or '0' each), id, state, node,
    priority, run_at, finished_at, live; whole, also number, type, rank, lease, key, owner,
    fixed. An absent value is sent as ''. Not ``full``: the row exists, and what never
    changes (the payload, the rank, the lease) is not sent again."""
    node, run_at, finished_at = record.node, record.run_at, record.finished_at
    head = [
        "",
        record.id,
        record.state.value,
        "" if node is None else node,
        str(record.priority),
        "" if run_at is None else repr(run_at),
        "" if finished_at is None else repr(finished_at),
        live(record),
    ]
    flags = (
        ("1" if full else "0")
        + ("0" if node is None else "1")
        + ("0" if run_at is None else "1")
        + ("0" if finished_at is None else "1")
    )
    if not full:
        head[0] = flags + "00"
        return head
    key, owner = record.key, record.owner
    head[0] = flags + ("0" if key is None else "1") + ("0" if owner is None else "1")
    head += [str(record.number), record.type, rank(record), repr(lease)]
    head += ["" if key is None else key, "" if owner is None else owner, fixed(record)]
    return head


def decode(values: list[str]) -> TaskRecord:
    """A task from its ``FIELDS`` (state, node, fixed, live), as HMGET returns them (what
    follows them is ignored). Its payload's JSON text is kept beside it (``payload_json``)."""
    state, node, fixed_text, live_text = values[0], values[1], values[2], values[3]
    head, _, payload = fixed_text.partition("\n")
    priority, id_, number, type_, max_retries, timeout, created_at, key, owner, headers = loads(
        head
    )
    attempts, run_at, started_at, finished_at, result, error, worker, progress, history = loads(
        live_text
    )
    return TaskRecord(
        id_,
        number,
        type_,
        loads(payload),
        priority,
        STATES[state],
        attempts,
        max_retries,
        float(timeout),
        float(created_at),
        None if run_at is None else float(run_at),
        key,
        owner,
        load_history(history),
        payload,
        None if started_at is None else float(started_at),
        None if finished_at is None else float(finished_at),
        result,
        None if error is None else TaskError(*error),
        worker,
        None if progress is None else Progress(*progress),
        node,
        headers,
    )
