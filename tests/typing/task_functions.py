"""Checked by mypy (tests/actors/test_task_function.py runs it), never run: what type checkers
see of a function `@registry.task` decorated. Each `type: ignore[code]` marks an error mypy
must report (with warn_unused_ignores, a missing error fails the check)."""

from __future__ import annotations

from typing import assert_type

import oncue

registry = oncue.Registry()


@registry.task("resize", timeout=30)
async def resize(ctx: oncue.TaskContext, payload: dict[str, int]) -> dict[str, int]:
    return {"width": payload["width"] // 2}


@registry.task()
def checksum(ctx: oncue.TaskContext, payload: str) -> int:
    return len(payload)


async def check(
    engine: oncue.Engine, client: oncue.AsyncClient, sync: oncue.Client, ctx: oncue.TaskContext
) -> None:
    assert isinstance(resize, oncue.TaskFunction)
    running = resize(ctx, {"width": 4})
    assert_type(await running, dict[str, int])
    assert_type(checksum(ctx, "abc"), int)
    checksum(ctx, 3)  # type: ignore[arg-type]
    checksum(ctx)  # type: ignore[call-arg]
    assert_type(await resize.submit(engine, {"width": 4}, priority="high"), oncue.Task)
    assert_type(await resize.submit(client, {"width": 4}, key="k"), oncue.Task)
    await resize.submit(sync, {"width": 4})  # type: ignore[arg-type]
    await resize.submit(engine, {}, priority=1.5)  # type: ignore[arg-type]
    assert_type(await engine.submit(resize, {"width": 4}), oncue.Task)
    assert_type(sync.submit(checksum, "abc"), oncue.Task)
