"""`@registry.task` keeps the function (same signature, same behaviour) and makes it
submittable by itself; mypy sees the function's own types (tests/typing/task_functions.py)."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from oncue.actors import Registry, TaskContext, TaskFunction, TaskState, open_engine

REPO = Path(__file__).resolve().parents[2]
registry = Registry()


@registry.task("halve", max_retries=0)
async def halve(ctx: TaskContext, payload: int) -> int:
    """Half of the payload."""
    return payload // 2


@registry.task(run_in="process")
def square(payload: int) -> int:
    return payload * payload


async def test_the_decorated_function_is_still_the_function() -> None:
    assert isinstance(halve, TaskFunction)
    assert (halve.name, square.name) == ("halve", "square")
    assert (halve.__name__, halve.__doc__) == ("halve", "Half of the payload.")
    assert square(7) == 49
    assert await halve.function(None, 9) == 4  # type: ignore[arg-type]


def test_it_pickles_as_a_reference_so_process_handlers_reach_their_process() -> None:
    assert pickle.loads(pickle.dumps(square)) is square
    assert registry.get("square").run_in == "process"


async def test_submitted_by_itself_by_the_function_or_by_name() -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        by_itself = await halve.submit(engine, 10, priority="high")
        by_function = await engine.submit(halve, 20)
        by_name = await engine.submit("halve", 30)
        results = [
            (await engine.wait(task.id)).result for task in (by_itself, by_function, by_name)
        ]
        assert results == [5, 10, 15]
        assert by_itself.priority == 2
        assert (await engine.get(by_itself.id)).state is TaskState.COMPLETED


@pytest.mark.timeout(300)
def test_mypy_sees_the_functions_own_signature() -> None:
    # In a process of its own: mypy raises the interpreter's recursion limit for good.
    typing_file = REPO / "tests" / "typing" / "task_functions.py"
    config = REPO / "pyproject.toml"
    command = [sys.executable, "-m", "mypy", "--config-file", str(config), str(typing_file)]
    checked = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
