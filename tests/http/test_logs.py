"""Log lines: one event per line, typed fields, the same event as text or JSON."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from oncue.actors import Registry, TaskContext, open_engine
from oncue.actors.backends.shared_memory import SharedMemory, SharedMemoryBackend
from oncue.http.app import create_app
from oncue.http.logs import configure_logging, fields, formatter


def record(event: str, exc_info: Any = None, **extra: Any) -> logging.LogRecord:
    logger = logging.getLogger("oncue.test")
    return logger.makeRecord(
        logger.name, logging.INFO, __file__, 1, event, (), exc_info, None, extra
    )


def test_a_newline_in_a_logged_value_cannot_forge_a_line() -> None:
    forged = "a\ntime=fake level=error logger=oncue.server event=server.pwned\rx"
    for log_format in ("text", "json"):
        line = formatter(log_format).format(record("http.request", path=forged, status=404))
        assert "\n" not in line
        assert "\r" not in line
    text = formatter("text").format(record("http.request", path=forged, status=404))
    assert text.endswith(
        'event=http.request path="a\\ntime=fake level=error logger=oncue.server'
        ' event=server.pwned\\rx" status=404'
    )


def test_a_traceback_is_one_field_of_one_line() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError as error:
        failed = record("task.error", exc_info=(type(error), error, error.__traceback__))
    text = formatter("text").format(failed)
    assert "\n" not in text
    assert 'exception="Traceback (most recent call last):\\n' in text
    event = json.loads(formatter("json").format(failed))
    assert event["exception"].endswith("RuntimeError: boom")


def test_text_and_json_render_the_same_event_with_typed_values() -> None:
    event = record("http.request", method="GET", path='/a "b" c', status=200, ms=1.5, ok=True)
    parsed = json.loads(formatter("json").format(event))
    assert parsed == {
        "time": parsed["time"],
        "level": "info",
        "logger": "oncue.test",
        "event": "http.request",
        "method": "GET",
        "path": '/a "b" c',  # the client's text, no quotes of ours in it
        "status": 200,
        "ms": 1.5,
        "ok": True,
    }
    assert parsed["time"].endswith("Z")
    text = formatter("text").format(event)
    assert text == (
        f"time={parsed['time']} level=info logger=oncue.test event=http.request method=GET"
        ' path="/a \\"b\\" c" status=200 ms=1.5 ok=true'
    )


def test_a_bad_format_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="log format must be one of"):
        formatter("xml")


async def test_the_access_log_in_json_has_numbers_and_the_raw_path(caplog) -> None:
    caplog.set_level(logging.INFO, logger="oncue")
    async with open_engine(workers=1) as engine:
        app = create_app(engine)
        async with app.test_app() as test_app:
            client = test_app.test_client()
            await client.get("/api/v1/tasks/a status=200\nforged")
    [access] = [r for r in caplog.records if r.getMessage() == "http.request"]
    event = json.loads(formatter("json").format(access))
    assert event["path"] == "/api/v1/tasks/a status=200\nforged"
    assert event["status"] == 404
    assert isinstance(event["duration_ms"], float)


async def test_what_a_handler_logs_carries_its_task_attempt_worker_and_node(
    autojump_clock, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="oncue.task")
    registry = Registry()

    @registry.task("resize", max_retries=1)
    async def resize(ctx: TaskContext, payload: Any) -> None:
        # a handler's own field is kept; one naming another task is not
        ctx.logger.info("resize.step", extra={"width": payload, "task_id": "forged"})
        if ctx.attempt == 1:
            raise RuntimeError("first attempt fails")

    backend = SharedMemoryBackend(SharedMemory())
    async with open_engine(registry=registry, store=backend, node="node-a", workers=1) as engine:
        task = await engine.submit("resize", 640)
        await engine.wait(task.id)
    steps = [fields(r) for r in caplog.records if r.getMessage() == "resize.step"]
    assert [step["attempt"] for step in steps] == [1, 2]
    for step in steps:
        assert step["task_id"] == task.id
        assert (step["task_type"], step["node"], step["width"]) == ("resize", "node-a", 640)
        assert step["worker"].startswith("worker-")


def test_configure_logging_prints_json_lines_to_stderr(capsys) -> None:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("info", "json")
        logging.getLogger("oncue.test").info("queue.depth", extra={"tasks": 3})
        logging.getLogger("oncue.test").debug("hidden", extra={"tasks": 4})
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    [line] = capsys.readouterr().err.splitlines()
    assert json.loads(line)["tasks"] == 3


async def test_a_sync_handler_logs_its_task_from_its_thread(caplog) -> None:
    caplog.set_level(logging.INFO, logger="oncue.task")
    registry = Registry()

    @registry.task("sync_job", run_in="thread")
    def sync_job(ctx: TaskContext, payload: Any) -> None:
        ctx.logger.info("sync.step")

    async with open_engine(registry=registry, workers=1) as engine:
        task = await engine.submit("sync_job", None)
        await engine.wait(task.id)
    [step] = [fields(r) for r in caplog.records if r.getMessage() == "sync.step"]
    assert (step["task_id"], step["node"]) == (task.id, None)


def test_times_are_utc_milliseconds_across_seconds() -> None:
    render = formatter("json")
    times = []
    for created in (1_764_925_200.0, 1_764_925_200.9996, 1_764_925_201.25):
        event = record("tick")
        event.created = created
        times.append(json.loads(render.format(event))["time"])
    assert times == [
        "2025-12-05T09:00:00.000Z",
        "2025-12-05T09:00:00.999Z",
        "2025-12-05T09:00:01.250Z",
    ]
