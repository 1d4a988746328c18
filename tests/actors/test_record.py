"""The store's record of a task: its snapshot, and the field order the store relies on."""

from __future__ import annotations

import attrs
import pytest

from oncue.actors.cores.record import TaskRecord
from oncue.actors.task import Task, TaskState, Transition


def test_a_snapshot_copies_every_field_of_its_record_by_name() -> None:
    # snapshot() passes the fields positionally: distinct values catch any two swapped.
    values: dict[str, object] = {
        field.name: f"value-{field.name}" for field in attrs.fields(TaskRecord)
    }
    values["history"] = [Transition(TaskState.PENDING, 1.0), Transition(TaskState.RUNNING, 2.0)]
    snapshot = TaskRecord(**values).snapshot()  # type: ignore[arg-type]
    for field in attrs.fields(Task):
        expected = values[field.name]
        if field.name == "history":
            expected = tuple(values["history"])  # type: ignore[arg-type]
        assert getattr(snapshot, field.name) == expected, field.name


def test_a_record_takes_what_a_submit_sets_first() -> None:
    # The store creates records with positional arguments in this order.
    names = [field.name for field in attrs.fields(TaskRecord)]
    assert names[:14] == [
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
    ]


def test_a_snapshot_is_frozen_and_its_history_a_tuple() -> None:
    record = TaskRecord("a", 1, "t", None, 1, TaskState.PENDING, 0, 3, 5.0, 1.0)
    record.move(TaskState.PENDING, 1.0)
    snapshot = record.snapshot()
    assert snapshot.history == (Transition(TaskState.PENDING, 1.0),)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        snapshot.state = TaskState.RUNNING  # type: ignore[misc]
