"""The client commands against a real `oncue serve`, and what `--help` says.

Run in-process through `main()` (a subprocess per call would cost a second of imports each);
`test_cli.py` runs the installed `oncue` script itself.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from servers import Oncue, Server, running_server

from oncue.http.cli import cli, main

TOKEN = "cli-test-token"


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    with running_server("--workers", "2", env={"ONCUE_API_TOKENS": f"cli:{TOKEN}"}) as served:
        yield served


@pytest.fixture
def oncue(server: Server, monkeypatch, capsys) -> Any:
    """Run `oncue ARGS` against the server with ONCUE_URL and ONCUE_TOKEN set: (code, out, err)."""
    monkeypatch.setenv("ONCUE_URL", server.url)
    monkeypatch.setenv("ONCUE_TOKEN", TOKEN)

    def run(*args: str) -> tuple[int, str, str]:
        try:
            code = main(list(args))
        except SystemExit as exit:  # what the console script would print, then exit 1
            code = 1
            print(exit.code, file=__import__("sys").stderr)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_submit_takes_every_option_of_the_api(oncue) -> None:
    code, out, _ = oncue(
        *("submit", "echo", "-d", '{"a": 1}', "--priority", "high", "--max-retries", "2"),
        *("--timeout", "90s", "--run-at", "2100-01-01T00:00:00", "--key", "cli-key"),
    )
    assert code == 0
    task = json.loads(out)
    assert (task["payload"], task["priority"], task["max_retries"]) == ({"a": 1}, 2, 2)
    assert (task["timeout"], task["run_at"]) == (90.0, "2100-01-01T00:00:00Z")
    assert (task["status"], task["key"]) == ("pending", "cli-key")
    again = json.loads(oncue("submit", "echo", "--key", "cli-key")[1])
    assert again["id"] == task["id"]
    code, out, _ = oncue("cancel", task["id"])
    assert (code, json.loads(out)["status"]) == (0, "cancelled")
    code, out, err = oncue("cancel", task["id"])
    assert (code, out) == (1, "")
    assert err == f"oncue: cannot cancel task {task['id']!r}: it is cancelled;" + (
        " only unfinished tasks can be cancelled\n"
    )


def test_a_task_is_printed_with_the_fields_the_server_shows(oncue, server: Server) -> None:
    task = json.loads(oncue("submit", "double", "-d", "4", "--key", "shown", "--wait")[1])
    answer = httpx.get(
        f"{server.url}/api/v1/tasks/{task['id']}", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    shown = answer.json()
    assert list(task) == list(shown)
    times = ("created_at", "started_at", "finished_at", "run_at")

    def timeless(task: dict[str, Any]) -> dict[str, Any]:
        steps = [{**step, "at": None} for step in task["history"]]
        return {k: v for k, v in task.items() if k not in times} | {"history": steps}

    assert timeless(task) == timeless(shown)
    assert [step["status"] for step in task["history"]][-2:] == ["running", "completed"]


def test_submit_wait_and_wait_exit_3_when_the_task_failed(oncue) -> None:
    code, out, _ = oncue("submit", "double", "-d", "21", "--wait")
    assert (code, json.loads(out)["result"]) == (0, 42)
    code, out, _ = oncue("submit", "fail", "--wait")
    failed = json.loads(out)
    assert (code, failed["status"]) == (3, "failed")
    assert oncue("wait", failed["id"])[0] == 3
    code, out, _ = oncue("retry", failed["id"])
    assert (code, json.loads(out)["id"]) == (0, failed["id"])


def test_wait_gives_up_after_its_timeout_in_one_line(oncue) -> None:
    task = json.loads(oncue("submit", "sleep", "-d", "60", "--delay", "0")[1])
    code, out, err = oncue("wait", task["id"], "--timeout", "0.2")
    assert (code, out) == (1, "")
    assert re.fullmatch(r"oncue: task '\w+' did not finish within 0.2s \(it is \w+\);.*\n", err)
    assert oncue("cancel", task["id"])[0] == 0


def test_tasks_pages_with_the_cursor_it_printed(oncue) -> None:
    for n in range(3):
        oncue("submit", "echo", "-d", str(n), "--delay", "1h")
    first = json.loads(oncue("tasks", "--type", "echo", "-s", "pending", "-n", "2")[1])
    assert len(first["tasks"]) == 2
    assert first["next_cursor"] is not None
    code, out, _ = oncue("tasks", "--type", "echo", "-n", "2", "--cursor", first["next_cursor"])
    second = json.loads(out)
    assert code == 0
    assert {task["id"] for task in first["tasks"]}.isdisjoint(t["id"] for t in second["tasks"])
    code, out, _ = oncue("stats")
    assert (code, json.loads(out)["by_state"]["pending"] >= 3) == (0, True)


def test_errors_are_one_line_exit_1_and_usage_errors_exit_2(
    oncue, monkeypatch, server: Server
) -> None:
    server_url = server.url
    assert oncue("status", "no-such-task") == (1, "", "oncue: no task with id 'no-such-task'\n")
    code, _, err = oncue("submit", "no-such-type")
    assert code == 1
    assert err.startswith("oncue: unknown task type 'no-such-type'; known types: ")
    assert err.count("\n") == 1
    code, _, err = oncue("submit", "echo", "--payload", "{bad")
    assert code == 2
    assert "Invalid value for '-d' / '--payload': not valid JSON" in err
    assert oncue("tasks", "--status", "done")[0] == 2
    monkeypatch.delenv("ONCUE_TOKEN")
    code, _, err = oncue("stats")
    assert code == 1
    assert err == (
        f"oncue: {server_url}: 401 unauthorized: this route needs a bearer token:"
        " Authorization: Bearer ...\n"
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{probe.getsockname()[1]}"
    code, _, err = oncue("stats", "--url", refused)
    assert code == 1
    assert err.startswith(f"oncue: cannot reach oncue at {refused}: ")
    assert err.count("\n") == 1


def test_help_shows_every_variable_and_the_default_in_effect(monkeypatch, capsys) -> None:
    for name in ("ONCUE_STORE", "DATABASE_URL", "REDIS_URL", "PORT", "ONCUE_PORT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DATABASE_URL", "postgresql://oncue:hunter2@db/tasks")
    monkeypatch.setenv("PORT", "9000")
    assert main(["serve", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())  # click wraps lines
    assert "env var: ONCUE_STORE, DATABASE_URL, REDIS_URL;" in text
    assert "default: postgresql://oncue:***@db/tasks (from DATABASE_URL)" in text
    assert "env var: ONCUE_PORT, PORT; default: 9000 (from PORT)" in text
    assert "hunter2" not in text
    for command in ("serve", "worker"):
        for param in cli.commands[command].params:
            if param.name not in ("insecure_no_auth", "help"):
                assert param.envvar, param.name
                assert getattr(param, "show_envvar", False), param.name
                assert f"{param.opts[-1]} " in text or command == "worker"
    monkeypatch.setenv("ONCUE_TOKEN", "secret-value")
    assert main(["stats", "--help"]) == 0
    shown = capsys.readouterr().out
    assert "secret-value" not in shown
    assert "(from ONCUE_TOKEN)" in " ".join(shown.split())


def test_version(capsys) -> None:
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"oncue {version('oncue')}\n"


def test_client_duration_flags_take_the_one_grammar(oncue) -> None:
    code, out, _ = oncue("submit", "echo", "--delay", "1.5h", "--timeout", "0.5s")
    task = json.loads(out)
    assert (code, task["timeout"], task["status"]) == (0, 0.5, "pending")
    code, out, err = oncue("wait", task["id"], "--timeout", "0.5s")
    assert (code, out) == (1, "")
    assert "did not finish within 0.5s" in err
    assert oncue("cancel", task["id"])[0] == 0


def test_events_prints_a_line_per_event_and_json_with_json(oncue, server: Server) -> None:
    code, out, _ = oncue("submit", "double", "-d", "21", "--wait")
    assert code == 0
    task = json.loads(out)
    since = f"{time.time() - 60!r}-0"  # a minute ago: the server replays the task's events
    lines = {}
    for flag in ("--json", None):
        args = ["events", "--task", task["id"], "--last-event-id", since, *([flag] if flag else [])]
        follower = Oncue(*args, env={"ONCUE_URL": server.url, "ONCUE_TOKEN": TOKEN})
        try:
            assert follower.process.stdout is not None
            lines[flag] = [follower.process.stdout.readline() for _ in range(3)]
        finally:
            follower.close()  # it follows until stopped
    events = [json.loads(line) for line in lines["--json"]]
    assert [event["status"] for event in events] == ["pending", "running", "completed"]
    assert {event["id"] for event in events} == {task["id"]}
    assert all(event["event_id"].endswith(f"-{task['number']}") for event in events)
    plain = lines[None]
    assert [line.split()[1:4] for line in plain] == [
        [f"#{task['number']}", "double", status] for status in ("pending", "running", "completed")
    ]
    assert plain[1].split()[4:7] == ["attempt", "1", events[1]["worker"]]


class _Stream:
    """What Client.events() yields: the events, then the id of the last one."""

    def __init__(self, items: list[Any]) -> None:
        self._items = items
        self.last_event_id: str | None = None

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None

    def __iter__(self) -> Iterator[Any]:
        for number, item in enumerate(self._items, 1):
            self.last_event_id = f"1700000000.0-{number}"
            yield item


class _Client:
    def __init__(self, items: list[Any]) -> None:
        self.items = items

    def events(self, **options: Any) -> _Stream:
        return _Stream(self.items)


def test_events_says_when_the_server_ends_the_stream_and_shows_actor_events_plainly(
    capsys,
) -> None:
    from oncue.actors import TaskEvent, TaskState
    from oncue.http.cli_client import events
    from oncue.http.client import ActorEvent

    items = [
        TaskEvent("t1", "double", TaskState.PENDING, 1_700_000_000.0, 0, None, 7),
        ActorEvent("crashed", "/oncue/workers/worker-1", 2, "RuntimeError: boom"),
    ]
    follow = events.callback.__wrapped__  # type: ignore[union-attr]  # the command, given a client
    assert follow(_Client(items), None, None, (), None, False) == 0
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].split()[1:4] == ["#7", "double", "pending"]
    assert lines[1].split("  ")[:3] == ["actor", "kind=crashed", "path=/oncue/workers/worker-1"]
    assert "resume with --last-event-id 1700000000.0-2" in err
