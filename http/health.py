"""`oncue worker --health-port`: /health and /metrics of a worker node, for probes and scrapes.

A worker serves no API; an orchestrator still needs to ask it whether it lives (Kubernetes
probes, Docker's HEALTHCHECK) and Prometheus to read its gauges. This is a bare ASGI app on
Hypercorn, no Quart: two routes, no authentication (it binds where `--health-host` says;
keep that inside the cluster network).
"""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config
from hypercorn.trio import serve as hypercorn_serve

from oncue.actors import Engine

from .metrics import CONTENT_TYPE, Metrics
from .reply import ASGIReceive, ASGISend, Scope


class HealthApp:
    """ASGI: GET /health (200 ok, 503 while draining) and GET /metrics of one engine."""

    def __init__(self, engine: Engine, draining: trio.Event) -> None:
        self._engine = engine
        self._draining = draining
        self._metrics = Metrics()

    async def __call__(self, scope: Scope, receive: ASGIReceive, send: ASGISend) -> None:
        if scope["type"] == "lifespan":  # nothing to set up or tear down: say so
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        status, content_type, body = await self._answer(scope["method"], scope["path"])
        headers = [(b"content-type", content_type.encode()), (b"cache-control", b"no-store")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, method: str, path: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, "application/json", _json({"error": "method_not_allowed"})
        if path in ("/health", "/api/v1/health"):
            draining = self._draining.is_set() or self._engine.closing
            status = {"status": "shutting_down" if draining else "ok", "node": self._engine.node}
            return (503 if draining else 200), "application/json", _json(status)
        if path == "/metrics":
            await self._metrics.refresh(self._engine)
            return 200, CONTENT_TYPE, self._metrics.render()
        return 404, "application/json", _json({"error": "not_found", "path": path})


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


async def serve_health(
    engine: Engine,
    host: str,
    port: int,
    draining: trio.Event,
    *,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve HealthApp until cancelled; reports the bound port (`nursery.start`)."""
    config = Config()
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")  # through our formatter, as serve's
    config.graceful_timeout = 0.5
    async with trio.open_nursery() as nursery:
        app: Any = HealthApp(engine, draining)  # an ASGI 3 app; hypercorn's types are narrower
        binds = await nursery.start(partial(hypercorn_serve, app, config))
        task_status.started(int(binds[0].rsplit(":", 1)[1]))
