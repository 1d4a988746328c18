"""`oncue worker --health-port`: the probes and the scrape of a node that serves no API."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import trio

from oncue.actors import Registry, open_engine
from oncue.actors.backends.memory import MemoryBackend
from oncue.http.cli import parse_options
from oncue.http.health import HealthApp
from oncue.http.worker_node import work


async def call(app: HealthApp, method: str, path: str) -> tuple[int, bytes]:
    """One request through the ASGI app itself."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app({"type": "http", "method": method, "path": path}, receive, send)
    return sent[0]["status"], sent[1]["body"]


async def test_a_worker_serves_health_and_metrics_on_its_port(caplog) -> None:
    caplog.set_level(logging.INFO, logger="oncue.worker")
    options = parse_options(
        ["worker", "--store", "redis://unused", "--workers", "1", "--health-port", "0"]
    )
    options.store = MemoryBackend()  # the test's own store: no shared database needed
    signals_in, signals = trio.open_memory_channel[int](1)
    async with trio.open_nursery() as nursery:
        await nursery.start(_work, options, signals)
        [started] = [r for r in caplog.records if r.getMessage() == "worker.health"]
        url = started.url.removesuffix("/health")
        async with httpx.AsyncClient(base_url=url) as client:
            health = await client.get("/health")
            metrics = await client.get("/metrics")
            missing = await client.get("/nope")
        await signals_in.send(15)
    assert (health.status_code, health.json()["status"]) == (200, "ok")
    assert metrics.status_code == 200
    assert "oncue_workers 1.0" in metrics.text
    assert "oncue_queue_depth 0.0" in metrics.text
    assert "# TYPE oncue_tasks_total counter" in metrics.text  # its engine's tally (none yet)
    assert missing.status_code == 404


async def _work(options: Any, signals: Any, *, task_status: Any) -> None:
    await work(options, Registry(), signals, task_status=task_status)


async def test_health_answers_503_once_draining_and_refuses_writes() -> None:
    draining = trio.Event()
    async with open_engine(workers=0) as engine:
        app = HealthApp(engine, draining)
        assert (await call(app, "GET", "/health"))[0] == 200
        assert (await call(app, "POST", "/health"))[0] == 405
        draining.set()
        status, body = await call(app, "GET", "/health")
    assert (status, json.loads(body)["status"]) == (503, "shutting_down")


def test_the_health_port_defaults_to_none_and_reads_the_environment(monkeypatch) -> None:
    options = parse_options(["worker", "--store", "redis://x"])
    assert (options.health_port, options.health_host) == (None, "127.0.0.1")
    monkeypatch.setenv("ONCUE_HEALTH_PORT", "9100")
    monkeypatch.setenv("ONCUE_HEALTH_HOST", "0.0.0.0")
    options = parse_options(["worker", "--store", "redis://x"])
    assert (options.health_port, options.health_host) == (9100, "0.0.0.0")
