"""A bad query is the caller's mistake: refused naming the field, never a fault of the store."""

from __future__ import annotations

import pytest

from oncue.actors import EventKind, InvalidField, LifecycleEvent, open_engine
from oncue.actors.errors import BadQuery
from oncue.actors.messages import ListTasks

TOO_BIG = "99999999999999999999"  # past what a 64-bit column holds


@pytest.mark.parametrize("cursor", [TOO_BIG, str(2**63), "-1", "1.5", "²", "x"])
async def test_a_cursor_that_is_no_task_number_is_invalid(tmp_path, registry, cursor) -> None:
    async with open_engine(registry=registry, store=f"sqlite:///{tmp_path}/t.db") as engine:
        with pytest.raises(InvalidField, match="cursor") as raised:
            await engine.list(cursor=cursor)
        assert raised.value.field == "cursor"
        assert (await engine.list(cursor=str(2**63 - 1))).tasks == []


async def test_the_store_refuses_a_number_sqlite_cannot_bind_and_keeps_running(
    tmp_path, registry
) -> None:
    events: list[LifecycleEvent] = []
    store = f"sqlite:///{tmp_path}/t.db"
    async with open_engine(registry=registry, store=store, observer=events.append) as engine:
        task = await engine.submit("double", 2)
        # what an engine without the edge check sent: sqlite raised OverflowError binding it
        with pytest.raises(BadQuery, match="out of the backend's range"):
            await engine._store.ask(ListTasks(None, None, 10, int(TOO_BIG)))
        assert (await engine.wait(task.id)).result == 4
    assert [event.path for event in events if event.kind is EventKind.RESTARTED] == []
