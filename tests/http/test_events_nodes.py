"""Events across nodes: a stream on one node shows what another node's workers do (PostgreSQL
and Redis through their notice channels; the shared-memory reference in process)."""

from __future__ import annotations

import pytest
from sse_client import open_stream

from oncue.actors import Registry, open_engine, register_builtins
from oncue.actors.backends.shared_memory import SharedMemory, SharedMemoryBackend
from oncue.http.app import create_app


@pytest.fixture(params=["postgres", "redis", "shared-memory"])
def stores(request):
    """How each of the two nodes opens the one shared store."""
    if request.param == "shared-memory":
        hub = SharedMemory()
        return lambda: SharedMemoryBackend(hub)
    url = request.getfixturevalue(f"{request.param}_store")
    return lambda: url


async def test_a_stream_on_one_node_shows_another_nodes_runs(stores) -> None:
    async with (
        open_engine(
            registry=register_builtins(Registry()), store=stores(), workers=0, node="api"
        ) as api,
        open_engine(
            registry=register_builtins(Registry()), store=stores(), workers=1, node="runner"
        ) as runner,
    ):
        app = create_app(api)
        async with app.test_app() as test_app:
            client = test_app.test_client()
            async with open_stream(client) as stream:
                response = await client.post("/api/v1/tasks", json={"type": "double", "payload": 4})
                task = await response.get_json()
                pending = await stream.until("task", id=task["id"], status="pending")
                running = await stream.until("task", id=task["id"], status="running")
                completed = await stream.until("task", id=task["id"], status="completed")
                done = await runner.wait(task["id"])
    assert pending.data["attempt"] == 0  # this node's own transition
    assert running.data["worker"] == "runner/worker-1"  # the runner's, relayed
    assert running.data["attempt"] == 1
    assert completed.id == f"{done.finished_at!r}-{task['number']}"


async def test_share_events_off_keeps_a_node_to_itself(stores) -> None:
    async with (
        open_engine(
            registry=register_builtins(Registry()),
            store=stores(),
            workers=0,
            node="api",
            share_events=False,
        ) as api,
        open_engine(
            registry=register_builtins(Registry()),
            store=stores(),
            workers=1,
            node="runner",
            share_events=False,
        ) as runner,
    ):
        tree = [actor.name for actor in await api.tree()]
        task = await api.submit("double", 1)
        await runner.wait(task.id)
    assert "relay" not in tree
