"""Task headers: string metadata set at submit, kept by every store, seen by every attempt."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
import trio

from oncue.actors import InvalidField, Registry, TaskContext, open_engine
from oncue.actors.backends.memory import MemoryBackend
from oncue.actors.backends.sqlite import SqliteBackend
from oncue.actors.backends.sqlite_sql import MIGRATIONS, migrate

HEADERS = {"tenant": "acme", "request-id": "r-42", "empty": ""}


@pytest.fixture(params=["memory", "sqlite", "postgres", "redis"])
def store(request: pytest.FixtureRequest, tmp_path: Any) -> Any:
    """A store the test opens twice (a restart): a backend object or a URL."""
    if request.param == "memory":
        return MemoryBackend()
    if request.param == "sqlite":
        return SqliteBackend(tmp_path / "oncue.db")
    return request.getfixturevalue(f"{request.param}_store")


async def test_headers_survive_a_restart_of_every_store(store, registry: Registry) -> None:
    async with open_engine(registry=registry, store=store, workers=1) as engine:
        await engine.pause()
        task = await engine.submit("echo", 1, headers=HEADERS)
        plain = await engine.submit("echo", 2)
        assert task.headers == HEADERS
    async with open_engine(registry=registry, store=store, workers=1) as engine:
        assert (await engine.get(task.id)).headers == HEADERS
        assert (await engine.get(plain.id)).headers is None
        with trio.fail_after(10):
            assert (await engine.wait(task.id)).headers == HEADERS


async def test_every_attempt_sees_the_headers(autojump_clock) -> None:
    registry = Registry()
    seen: list[Any] = []

    @registry.task("look", max_retries=1, retry_base=0.1, retry_cap=0.1)
    async def look(ctx: TaskContext, payload: Any) -> None:
        seen.append(ctx.headers)
        if ctx.attempt == 1:
            raise RuntimeError("again")

    async with open_engine(registry=registry, workers=1) as engine:
        task_id = engine.submit_nowait("look", None, headers={"a": "b"})
        await engine.wait(task_id)
    assert seen == [{"a": "b"}, {"a": "b"}]


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        (["a"], "an object of strings"),
        ({"a": 1}, "must be a string"),
        ({"": "x"}, "1-100 characters"),
        ({"a": "x" * 1025}, "at most 1024"),
        ({f"h{n}": "" for n in range(33)}, "at most 32 entries"),
    ],
)
async def test_bad_headers_are_refused_naming_the_field(headers: Any, problem: str) -> None:
    async with open_engine(workers=0) as engine:
        with pytest.raises(InvalidField, match=problem) as refused:
            await engine.submit("echo", None, headers=headers)
    assert refused.value.field == "headers"


async def test_an_old_sqlite_database_gains_the_headers_column(tmp_path, registry) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path, isolation_level=None) as connection:
        connection.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for number, script in enumerate(MIGRATIONS[:-1], start=1):
            connection.executescript(script)
            connection.execute("INSERT INTO schema_version VALUES (?)", (number,))
        connection.execute(
            "INSERT INTO tasks (id, number, type, payload, priority, state, attempts,"
            " max_retries, timeout, created_at, history) VALUES"
            " ('old', 1, 'echo', '5', 1, 'completed', 1, 3, 300, 1.0, '[]')"
        )
    async with open_engine(registry=registry, store=f"sqlite:///{path}", workers=0) as engine:
        old = await engine.get("old")
        new = await engine.submit("echo", None, headers={"k": "v"})
    assert (old.payload, old.headers) == (5, None)
    assert stored_headers(path, new.id) == '{"k":"v"}'


def stored_headers(path: Any, task_id: str) -> str:
    with sqlite3.connect(path) as connection:
        migrate(connection)  # already current: a no-op
        row = connection.execute("SELECT headers FROM tasks WHERE id = ?", (task_id,)).fetchone()
    return str(row[0])
