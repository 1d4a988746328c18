"""Fixtures for the HTTP tests: a real engine (memory store) and the app's test client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import trio
from quart.typing import TestClientProtocol

from oncue.actors import Engine, Fatal, Registry, TaskContext, open_engine, register_builtins
from oncue.http.app import create_app


def make_registry() -> Registry:
    """The built-ins plus `block`, which runs until the test sets `registry.release`."""
    registry = register_builtins(Registry())
    release = trio.Event()
    registry.release = release  # type: ignore[attr-defined]

    @registry.task("block", timeout=60, max_retries=0)
    async def block(ctx: TaskContext, payload: Any) -> Any:
        await release.wait()
        return payload

    @registry.task("boom", max_retries=0)
    async def boom(ctx: TaskContext, payload: Any) -> Any:
        raise Fatal("boom on purpose")

    return registry


@pytest.fixture
async def engine() -> AsyncIterator[Engine]:
    async with open_engine(registry=make_registry(), workers=2, queue_size=50) as engine:
        yield engine


@pytest.fixture
async def client(engine: Engine) -> AsyncIterator[TestClientProtocol]:
    app = create_app(engine, max_body_size=64 * 1024, batch_limit=10)
    async with app.test_app() as test_app:
        yield test_app.test_client()
