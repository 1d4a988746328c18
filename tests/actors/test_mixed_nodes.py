"""Nodes with different registries on one PostgreSQL or Redis store: each claims only the
types it can run, and a task no live node can run waits, pending, for one that can.

The same deployment as `oncue serve --handlers special` beside a plain `oncue worker`. Real
stores, real clock: the tests wait on tasks, never on time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio

from oncue.actors import Engine, Registry, TaskContext, TaskState, open_engine

WAIT = 30  # seconds: a bound for a hung test, never a measure


def registry_of(*names: str) -> Registry:
    """A registry with one handler per name, each returning its own name."""
    registry = Registry()
    for name in names:

        async def handler(ctx: TaskContext, payload: Any, name: str = name) -> Any:
            return name

        registry.register(name, handler)
    return registry


@asynccontextmanager
async def node(store: str, name: str, registry: Registry, workers: int) -> AsyncIterator[Engine]:
    async with open_engine(registry=registry, store=store, workers=workers, node=name) as engine:
        yield engine


@pytest.fixture(params=["postgres", "redis"])
def shared_store(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_store"))


async def test_a_node_never_claims_a_type_it_cannot_run(shared_store: str) -> None:
    special = registry_of("special_job", "plain_job")
    plain = registry_of("plain_job")
    async with node(shared_store, "front", special, workers=0) as front:
        waiting = [await front.submit("special_job", n, priority=3) for n in range(5)]
        async with node(shared_store, "plain", plain, workers=1):
            # Claimed by priority, so the plain node would take the special tasks first.
            marker = await front.submit("plain_job", None, priority=0)
            with trio.fail_after(WAIT):
                assert (await front.wait(marker.id)).worker.startswith("plain")  # type: ignore[union-attr]
            for task in waiting:
                left = await front.get(task.id)
                assert (left.state, left.attempts, left.worker) == (TaskState.PENDING, 0, None)
            async with node(shared_store, "able", special, workers=1):
                with trio.fail_after(WAIT):
                    done = [await front.wait(task.id) for task in waiting]
    assert {task.state for task in done} == {TaskState.COMPLETED}
    assert {task.result for task in done} == {"special_job"}
    assert {task.worker.split("/")[0] for task in done if task.worker} == {"able"}
