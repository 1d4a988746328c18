"""Fixtures for the engine tests: handlers that record what ran, when and in what order."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from oncue.actors import Fatal, Registry, Retry, TaskContext, register_builtins


def make_registry() -> Registry:
    """The built-ins plus handlers that record what ran, when and in what order."""
    registry = register_builtins(Registry())
    registry.ran = []  # type: ignore[attr-defined]
    registry.times = []  # type: ignore[attr-defined]

    @registry.task("record")
    async def record(ctx: TaskContext, payload: Any) -> Any:
        registry.ran.append(payload)  # type: ignore[attr-defined]
        return payload

    @registry.task("flaky", max_retries=3, retry_base=1.0, retry_cap=8.0)
    async def flaky(ctx: TaskContext, payload: Any) -> Any:
        registry.times.append(trio.current_time())  # type: ignore[attr-defined]
        if ctx.attempt <= payload["fail_times"]:
            raise RuntimeError(f"attempt {ctx.attempt} fails")
        return ctx.attempt

    @registry.task("fatal")
    async def fatal(ctx: TaskContext, payload: Any) -> Any:
        raise Fatal("no point retrying")

    @registry.task("retry_later", max_retries=2)
    async def retry_later(ctx: TaskContext, payload: Any) -> Any:
        registry.times.append(trio.current_time())  # type: ignore[attr-defined]
        if ctx.attempt == 1:
            raise Retry(delay=30)
        return "second time lucky"

    @registry.task("hang", timeout=2.0, max_retries=0)
    async def hang(ctx: TaskContext, payload: Any) -> Any:
        await trio.sleep_forever()

    @registry.task("slow", timeout=100.0)
    async def slow(ctx: TaskContext, payload: Any) -> Any:
        await trio.sleep(payload)
        return payload

    @registry.task("gate", timeout=1000.0)
    async def gate(ctx: TaskContext, payload: Any) -> Any:
        await registry.gate.wait()  # type: ignore[attr-defined]
        return payload

    registry.gate = trio.Event()  # type: ignore[attr-defined]
    return registry


@pytest.fixture
def registry() -> Registry:
    return make_registry()
