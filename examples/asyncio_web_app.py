"""Submit tasks from an asyncio web app (FastAPI, Starlette, ...) with oncue.AsyncClient.

The app opens one client for its whole life (its lifespan) and submits from its routes; the
work runs in `oncue serve`. With FastAPI the app below is::

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        async with oncue.AsyncClient(ONCUE_URL, token=ONCUE_TOKEN) as app.state.oncue:
            yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/double/{n}", status_code=202)
    async def double(n: int, request: Request):
        task = await request.app.state.oncue.submit("double", n, key=f"double-{n}")
        return {"task": task.id}

    @app.get("/tasks/{task_id}")
    async def show(task_id: str, request: Request):
        try:
            task = await request.app.state.oncue.wait(task_id, timeout=5)
        except oncue.TaskNotFound:
            raise HTTPException(404)
        return {"status": task.state, "result": task.result}

To run without FastAPI installed, this file writes the same app as plain ASGI and calls it
in-process with httpx; it starts its own `oncue serve` on a free port and stops it at the end.
Run: python examples/asyncio_web_app.py
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

import oncue

ONCUE_TOKEN = None  # the token `oncue serve` wants, if it has ONCUE_API_TOKENS set


class App:
    """The FastAPI app of the docstring, as plain ASGI: lifespan and two routes."""

    def __init__(self, oncue_url: str) -> None:
        self.oncue_url = oncue_url
        self.oncue: oncue.AsyncClient | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        status, body = await self.route(scope["method"], scope["path"])
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": json.dumps(body).encode()})

    async def lifespan(self, receive: Any, send: Any) -> None:
        await receive()  # lifespan.startup
        async with oncue.AsyncClient(self.oncue_url, token=ONCUE_TOKEN) as self.oncue:
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})

    async def route(self, method: str, path: str) -> tuple[int, Any]:
        assert self.oncue is not None, "the lifespan opens the client"
        if method == "POST" and (match := re.fullmatch(r"/double/(\d+)", path)):
            n = int(match[1])
            task = await self.oncue.submit("double", n, key=f"double-{n}")
            return 202, {"task": task.id}
        if method == "GET" and (match := re.fullmatch(r"/tasks/([\w-]+)", path)):
            try:
                task = await self.oncue.wait(match[1], timeout=5)
            except oncue.TaskNotFound:
                return 404, {"detail": "Not Found"}
            return 200, {"status": task.state, "result": task.result}
        return 404, {"detail": "Not Found"}


async def use(app: App) -> None:
    """What the app's users do: POST, then GET the result."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as users:
        accepted = (await users.post("/double/21")).json()
        print("POST /double/21 ->", accepted)
        shown = (await users.get(f"/tasks/{accepted['task']}")).json()
        print(f"GET /tasks/{accepted['task']} ->", shown)
        assert shown == {"status": "completed", "result": 42}
        assert (await users.get("/tasks/no-such-task")).status_code == 404


async def main(oncue_url: str) -> None:
    app = App(oncue_url)
    startup: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    done: asyncio.Queue[dict[str, str]] = asyncio.Queue()
    await startup.put({"type": "lifespan.startup"})
    lifespan = asyncio.create_task(app({"type": "lifespan"}, startup.get, done.put))
    assert (await done.get())["type"] == "lifespan.startup.complete"
    await use(app)
    await startup.put({"type": "lifespan.shutdown"})
    await lifespan


def start_oncue() -> tuple[subprocess.Popen[str], str]:
    """`oncue serve` on a free port with a memory store; its URL from the banner."""
    command = shutil.which("oncue") or str(Path(sys.executable).with_name("oncue"))
    server = subprocess.Popen(
        [command, "serve", "--port", "0", "--workers", "2", "--store", "memory://"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert server.stdout is not None
    match = re.search(r"listening on (\S+)", server.stdout.readline())
    assert match, "oncue serve did not start"
    return server, match[1]


if __name__ == "__main__":
    server, url = start_oncue()
    try:
        asyncio.run(main(url))
    finally:
        server.terminate()
        assert server.wait(timeout=30) == 0
