"""The framework ceiling: a bare ASGI endpoint on the same Hypercorn trio worker oncue uses.

``python -m bench.http_bare PORT`` serves until killed.  It parses the JSON body and answers
201 with a small task-shaped JSON object (or one per task for a ``{"tasks": [...]}`` body), so
the work left out, compared with oncue, is exactly the framework, validation and the engine.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    data = json.loads(body or b"{}")
    if isinstance(data, dict) and "tasks" in data:
        answer: Any = {"tasks": [_task(number, t) for number, t in enumerate(data["tasks"])]}
    else:
        answer = _task(1, data)
    payload = json.dumps(answer).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": 201, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _task(number: int, data: Any) -> dict[str, Any]:
    kind = data.get("type") if isinstance(data, dict) else None
    return {"id": f"t{number}", "type": kind, "status": "pending", "payload": data}


def main(port: int) -> None:
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")
    config.graceful_timeout = 3.0
    trio.run(serve, app, config)


if __name__ == "__main__":
    main(int(sys.argv[1]))
