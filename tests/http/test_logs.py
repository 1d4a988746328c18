"""Log lines: one per record, whatever a client puts in what gets logged."""

from __future__ import annotations

import json
import logging

from oncue.actors import open_engine
from oncue.http.app import create_app
from oncue.http.logs import JsonFormatter, KeyValueFormatter


def record(message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord("oncue.test", logging.INFO, __file__, 1, message, args, None)


def test_a_newline_in_a_logged_value_cannot_forge_a_line() -> None:
    forged = "a\ntime=fake level=error logger=oncue.server server.pwned"
    line = KeyValueFormatter().format(record("http.request path=%s status=%d", forged, 404))
    assert "\n" not in line
    assert line.endswith("server.pwned status=404")


def test_json_lines_carry_the_event_and_fields() -> None:
    line = JsonFormatter().format(record("task.done id=%s worker=%s", "abc", "worker-1"))
    fields = json.loads(line)
    assert (fields["event"], fields["id"], fields["worker"]) == ("task.done", "abc", "worker-1")


async def test_the_access_log_quotes_the_request_path(caplog) -> None:
    caplog.set_level(logging.INFO, logger="oncue")
    async with open_engine(workers=1) as engine:
        app = create_app(engine)
        async with app.test_app() as test_app:
            client = test_app.test_client()
            await client.get("/api/v1/tasks/a status=200\nforged")
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("http.request")]
    assert lines == [
        'http.request method=GET path="/api/v1/tasks/a status=200\\nforged" status=404'
        + lines[0].split("status=404", 1)[1]
    ]
