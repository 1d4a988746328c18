"""How a task is shown (`task_out`): every field of the documented `TaskOut`, from the engine's
`Task`, whatever it holds."""

from __future__ import annotations

import msgspec

from oncue.actors import Task, TaskError, TaskState, Transition
from oncue.actors.task import Progress
from oncue.http.models import TaskOut, task_out
from oncue.http.tenancy import SEPARATOR

T0 = 1_700_000_000.0


def shown(task: Task) -> dict[str, object]:
    out = task_out(task)
    assert isinstance(out, TaskOut)
    return msgspec.json.decode(msgspec.json.encode(out))  # type: ignore[no-any-return]


def test_a_new_task_shows_every_field() -> None:
    history = (Transition(TaskState.PENDING, T0),)
    task = Task("t1", 1, "double", {"n": [1]}, 1, TaskState.PENDING, 0, 3, 5.0, T0, history=history)
    assert shown(task) == {
        "id": "t1",
        "number": 1,
        "type": "double",
        "payload": {"n": [1]},
        "priority": 1,
        "status": "pending",
        "created_at": "2023-11-14T22:13:20Z",
        "started_at": None,
        "finished_at": None,
        "retry_count": 0,
        "max_retries": 3,
        "timeout": 5.0,
        "run_at": None,
        "result": None,
        "error": None,
        "progress": None,
        "attempts": 0,
        "worker": None,
        "key": None,
        "headers": None,
        "history": [
            {"status": "pending", "at": "2023-11-14T22:13:20Z", "worker": None, "error": None}
        ],
    }


def test_a_failed_task_shows_its_error_progress_key_and_whole_history() -> None:
    history = (
        Transition(TaskState.PENDING, T0),
        Transition(TaskState.RUNNING, T0 + 1, "worker-1"),
        Transition(TaskState.FAILED, T0 + 2.5, None, "Fatal: no"),
    )
    task = Task(
        "t2", 2, "boom", None, -4, TaskState.FAILED, 3, 2, 2.5, T0, run_at=T0 + 0.25,
        started_at=T0 + 1, finished_at=T0 + 2.5, result=[1], error=TaskError("Fatal", "no", "tb"),
        worker="worker-1", progress=Progress(0.5, "half"), key=f"alice{SEPARATOR}k",
        owner="alice", history=history, headers={"traceparent": "x"},
    )  # fmt: skip
    out = shown(task)
    assert (out["status"], out["retry_count"], out["attempts"]) == ("failed", 2, 3)
    assert (out["run_at"], out["started_at"]) == (
        "2023-11-14T22:13:20.250000Z",
        "2023-11-14T22:13:21Z",
    )
    assert out["finished_at"] == "2023-11-14T22:13:22.500000Z"
    assert out["error"] == {"type": "Fatal", "message": "no", "traceback": "tb"}
    assert out["progress"] == {"fraction": 0.5, "message": "half"}
    assert (out["key"], out["headers"], out["result"]) == ("k", {"traceparent": "x"}, [1])
    assert [(step["status"], step["worker"], step["error"]) for step in out["history"]] == [
        ("pending", None, None),
        ("running", "worker-1", None),
        ("failed", None, "Fatal: no"),
    ]
    assert "owner" not in out


def test_the_fields_are_those_the_spec_documents_in_its_order() -> None:
    task = Task("t3", 3, "double", 1, 1, TaskState.COMPLETED, 1, 3, 5.0, T0)
    assert list(shown(task)) == list(TaskOut.__struct_fields__)
