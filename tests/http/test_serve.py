"""End to end: Hypercorn serves the app on loopback inside our nursery; httpx calls it."""

from __future__ import annotations

from functools import partial

import httpx
import trio
import trio.testing

from oncue.actors import Engine
from oncue.http.serve import serve


async def test_serve_on_loopback_and_stop_gracefully(engine: Engine) -> None:
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve, engine, "127.0.0.1", 0, shutdown=stop))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            response = await http.post("/api/v1/tasks", json={"type": "double", "payload": 21})
            assert response.status_code == 201
            task_id = response.json()["id"]
            done = (await http.get(f"/api/v1/tasks/{task_id}/wait", params={"timeout": 30})).json()
            assert done["result"] == 42
            assert (await http.get("/health")).json()["status"] == "ok"
            invalid = await http.post("/api/v1/tasks", content=b"{", headers=JSON)
            assert invalid.status_code == 400
            assert invalid.json()["error"]["code"] == "invalid_json"
        stop.set()
    # leaving the nursery means Hypercorn and the event follower have both stopped


async def test_shutdown_ends_long_polls_early(engine: Engine) -> None:
    await engine.pause()
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve, engine, "127.0.0.1", 0, shutdown=stop))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            task_id = (await http.post("/api/v1/tasks", json={"type": "echo"})).json()["id"]
            answers = []

            async def long_poll() -> None:
                url = f"/api/v1/tasks/{task_id}/wait"
                answers.append(await http.get(url, params={"timeout": 300}))

            async with trio.open_nursery() as polls:
                polls.start_soon(long_poll)
                await trio.testing.wait_all_tasks_blocked()
                stop.set()
            assert answers[0].status_code == 200
            assert answers[0].json()["status"] == "pending"


JSON = {"Content-Type": "application/json"}
