"""The registry holds what it is given: the built-ins only when asked for."""

from __future__ import annotations

import pytest

from oncue.actors import Registry, TaskContext, UnknownTaskType, open_engine, register_builtins
from oncue.http.process import load_registry


def test_a_bare_registry_holds_only_what_is_registered() -> None:
    registry = Registry()

    @registry.task("mine")
    async def mine(ctx: TaskContext, payload: object) -> object:
        return payload

    assert registry.names() == ["mine"]
    with pytest.raises(UnknownTaskType, match="echo"):
        registry.get("echo")


def test_register_builtins_adds_them_and_keeps_a_type_of_yours() -> None:
    registry = Registry()

    @registry.task("double")
    async def double(ctx: TaskContext, payload: int) -> int:
        return payload * 3

    assert register_builtins(registry) is registry
    assert {"echo", "sleep", "email", "double"} <= set(registry.names())
    assert registry.get("double").function is double


def test_serve_registers_the_builtins_unless_told_not_to() -> None:
    assert "echo" in load_registry(None)
    assert load_registry(None, builtins=False).names() == []


async def test_an_engine_given_no_registry_runs_the_builtins() -> None:
    async with open_engine(store="memory://") as engine:
        task = await engine.submit("double", 21)
        assert (await engine.wait(task.id)).result == 42
