"""The store's record of a task: its snapshot, and the field order the store relies on."""

from __future__ import annotations

import inspect

import attrs
import pytest

from oncue.actors.cores.record import TaskRecord
from oncue.actors.task import Task, TaskState, Transition

TASK_FIELDS = [field.name for field in attrs.fields(Task)]


def distinct_values() -> dict[str, object]:
    """A value for every parameter of a record, each different, so two swapped show."""
    names = list(inspect.signature(TaskRecord).parameters)
    values: dict[str, object] = {name: f"value-{name}" for name in names}
    values["history"] = (Transition(TaskState.PENDING, 1.0), Transition(TaskState.RUNNING, 2.0))
    return values


def test_a_record_holds_exactly_the_fields_of_a_task_in_its_dict() -> None:
    # A snapshot is the record's __dict__ copied: it must hold Task's fields and nothing else
    # (what only the store needs lives in slots), in Task's order.
    record = TaskRecord(**distinct_values())  # type: ignore[arg-type]
    assert list(vars(record)) == TASK_FIELDS
    assert (record.payload_json, record.node) == ("value-payload_json", "value-node")


def test_a_snapshot_copies_every_field_of_its_record_by_name() -> None:
    values = distinct_values()
    snapshot = TaskRecord(**values).snapshot()  # type: ignore[arg-type]
    assert type(snapshot) is Task
    for name in TASK_FIELDS:
        assert getattr(snapshot, name) == values[name], name
    assert snapshot == Task(**{name: values[name] for name in TASK_FIELDS})  # type: ignore[arg-type]


def test_a_snapshot_does_not_move_with_its_record() -> None:
    record = TaskRecord("a", 1, "t", None, 1, TaskState.PENDING, 0, 3, 5.0, 1.0)
    snapshot = record.snapshot()
    record.move(TaskState.RUNNING, 2.0, "worker-1")
    record.attempts = 1
    assert (snapshot.state, snapshot.attempts, snapshot.history) == (TaskState.PENDING, 0, ())
    assert record.history == (Transition(TaskState.RUNNING, 2.0, "worker-1"),)


def test_a_record_takes_what_a_submit_sets_first() -> None:
    # Admission builds records with positional arguments in this order.
    names = list(inspect.signature(TaskRecord).parameters)
    assert names[:15] == [
        "id",
        "number",
        "type",
        "payload",
        "priority",
        "state",
        "attempts",
        "max_retries",
        "timeout",
        "created_at",
        "run_at",
        "key",
        "owner",
        "history",
        "payload_json",
    ]


def test_a_snapshot_is_frozen_and_its_history_a_tuple() -> None:
    record = TaskRecord("a", 1, "t", None, 1, TaskState.PENDING, 0, 3, 5.0, 1.0, history=[])
    record.move(TaskState.PENDING, 1.0)
    snapshot = record.snapshot()
    assert snapshot.history == (Transition(TaskState.PENDING, 1.0),)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snapshot.state = TaskState.RUNNING  # type: ignore[misc]


def test_a_copy_is_independent_of_its_record() -> None:
    record = TaskRecord("a", 1, "t", None, 1, TaskState.PENDING, 0, 3, 5.0, 1.0, node="n1")
    record.payload_json = "null"
    twin = record.copy()
    twin.move(TaskState.RUNNING, 2.0)
    twin.node = "n2"
    assert (record.state, record.node, record.history) == (TaskState.PENDING, "n1", ())
    assert (twin.payload_json, twin.id) == ("null", "a")
