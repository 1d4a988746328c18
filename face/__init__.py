"""oncue: a task queue built as a Trio actor system with supervision trees.

The public API is what ``__all__`` lists (tests/test_public_api.py pins it): embed the engine
in a trio program with :func:`open_engine` and a :class:`Registry` of task types, or talk to
``oncue serve`` from asyncio, trio or sync code with :class:`AsyncClient` / :class:`Client`.
``oncue.actors`` (the actor runtime and the engine's internals) and ``oncue.http`` (the HTTP
service and the CLI) stay importable for everything else.
"""

from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

# In a source checkout (an editable install), this folder (face/) sits beside actors/ and
# http/, which pyproject maps into this package. setuptools' editable finder finds the regular
# oncue.actors but not the namespace portion oncue.http below a regular package, so the
# checkout's root is searched too. An installed wheel holds them all in one folder.
_ROOT = Path(__file__).resolve().parent.parent
if (_ROOT / "pyproject.toml").is_file() and (_ROOT / "http" / "app.py").is_file():
    __path__.append(str(_ROOT))

from oncue.actors import (  # noqa: E402 (after the search path is complete)
    Engine,
    EngineClosed,
    EngineStatistics,
    EventsDropped,
    Fatal,
    InvalidField,
    OncueError,
    Page,
    QueueFull,
    Registry,
    Retry,
    Stats,
    StoreUnavailable,
    Submission,
    Task,
    TaskAlreadyFinished,
    TaskContext,
    TaskError,
    TaskEvent,
    TaskFunction,
    TaskNotFailed,
    TaskNotFinished,
    TaskNotFound,
    TaskSignal,
    TaskState,
    TaskStateError,
    TaskTimeout,
    UnknownTaskType,
    open_engine,
    register_builtins,
)
from oncue.http.client import (  # noqa: E402
    ActorEvent,
    AsyncClient,
    AsyncEventStream,
    Client,
    ClientError,
    EventsReset,
    EventStream,
    NotAnOncueServer,
    RequestRejected,
    ServerUnreachable,
)

try:
    __version__ = version("oncue")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
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
