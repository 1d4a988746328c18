"""`import oncue` is the public API: these names, no more, no fewer (change both on purpose)."""

from __future__ import annotations

import subprocess
import sys

import oncue
import oncue.actors
import oncue.http.client

PUBLIC = [
    "ActorEvent",
    "AsyncClient",
    "AsyncEventStream",
    "Client",
    "ClientError",
    "Engine",
    "EngineClosed",
    "EngineStatistics",
    "EventStream",
    "EventsDropped",
    "EventsReset",
    "Fatal",
    "InvalidField",
    "NotAnOncueServer",
    "OncueError",
    "Page",
    "QueueFull",
    "Registry",
    "RequestRejected",
    "Retry",
    "ServerUnreachable",
    "Stats",
    "StoreUnavailable",
    "Submission",
    "Task",
    "TaskAlreadyFinished",
    "TaskContext",
    "TaskError",
    "TaskEvent",
    "TaskFunction",
    "TaskNotFailed",
    "TaskNotFinished",
    "TaskNotFound",
    "TaskSignal",
    "TaskState",
    "TaskStateError",
    "TaskTimeout",
    "UnknownTaskType",
    "open_engine",
    "register_builtins",
]


def test_the_public_names_are_pinned() -> None:
    assert sorted(oncue.__all__) == PUBLIC
    assert all(getattr(oncue, name) is not None for name in PUBLIC)


def test_the_face_re_exports_the_same_objects_as_the_sub_packages() -> None:
    assert oncue.open_engine is oncue.actors.open_engine
    assert oncue.Registry is oncue.actors.Registry
    assert oncue.TaskNotFound is oncue.actors.TaskNotFound
    assert oncue.Client is oncue.http.client.Client


def test_version_is_the_installed_distributions() -> None:
    from importlib.metadata import version

    assert oncue.__version__ == version("oncue")


def test_python_dash_m_oncue_is_the_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "oncue", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"oncue {oncue.__version__}"
