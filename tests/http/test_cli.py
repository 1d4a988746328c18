"""The real `oncue serve` process: README curl calls, client commands, SIGTERM mid-work."""

from __future__ import annotations

import functools
import re
import signal
import subprocess
from collections.abc import Iterator

import click
import httpx
import pytest
from servers import BOUND, ONCUE, Oncue, Server, poll, running_server

from oncue.http.cli import cli, parse_options


@pytest.fixture
def server() -> Iterator[Server]:
    with running_server("--workers", "2") as running:
        yield running


def test_readme_calls_then_sigterm_mid_work_loses_nothing(tmp_path) -> None:
    store = f"sqlite:///{tmp_path}/tasks.db"
    with running_server("--workers", "2", "--grace", "0.05", store=store) as server:
        with httpx.Client(base_url=server.url, timeout=BOUND) as http:
            accepted = _readme_calls_then_work(http)
        assert server.stop(signal.SIGTERM) == 0  # drains (briefly), exits cleanly
    log = server.log
    assert "server.stopped" in log
    left = re.search(r"server\.drained unfinished=(\d+) interrupted=(\d+)", log)
    assert left, log
    assert int(left[1]) > 0, "SIGTERM came mid-work: some tasks were left for the restart"
    with running_server("--workers", "2", store=store) as restarted:  # what was left runs now
        with httpx.Client(base_url=restarted.url, timeout=BOUND) as http:
            for task_id in accepted:
                done = poll(functools.partial(_finished, http, task_id), f"task {task_id}")
                assert done["status"] == "completed", done
        assert restarted.stop(signal.SIGTERM) == 0


def _finished(http: httpx.Client, task_id: str) -> dict | None:
    task = http.get(f"/api/v1/tasks/{task_id}").json()
    return task if task["status"] in ("completed", "failed", "cancelled") else None


def _readme_calls_then_work(http: httpx.Client) -> list[str]:
    """The compat READMEs' curl examples; then six tasks, two running when this returns."""
    assert http.post("/tasks", json={"status": "new", "result": 21}).json() == {
        "id": 1,
        "status": "queued",
        "result": 21,
    }
    assert poll(lambda: http.get("/tasks/1").json()["status"] == "completed", "task 1")
    assert http.get("/tasks/1").json() == {"id": 1, "status": "completed", "result": 42}
    submitted = http.post("/submit", json={"type": "email", "payload": {"to": "a@b.c"}})
    task_id = submitted.json()["task_id"]
    assert poll(lambda: "success" in http.get(f"/status/{task_id}").json(), "email")
    assert http.get(f"/status/{task_id}").json()["success"] is True
    assert set(http.get("/stats").json()) == {
        "total_processed",
        "successful",
        "failed",
        "queue_length",
    }
    accepted = [
        http.post("/api/v1/tasks", json={"type": "sleep", "payload": 0.5}).json()["id"]
        for _ in range(6)
    ]
    poll(lambda: http.get("/api/v1/stats").json()["running"] > 0, "a running task")
    return accepted


# A handlers module that holds `oncue serve` in its imports (before trio listens for signals)
# until the test has sent its signal.
GATE = """
import os, pathlib, time

from oncue.actors import Registry, register_builtins

gate = pathlib.Path(os.environ["ONCUE_TEST_GATE"])
(gate / "importing").touch()
deadline = time.monotonic() + 30
while not (gate / "go").exists() and time.monotonic() < deadline:
    time.sleep(0.01)
registry = register_builtins(Registry())
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_python_imports_still_exits_cleanly(tmp_path, signum) -> None:
    """The console script catches signals first thing, and the serve loop drains for them."""
    (tmp_path / "gate_handlers.py").write_text(GATE)
    early = Oncue(
        *("serve", "--port", "0", "--store", "memory://", "--handlers", "gate_handlers"),
        cwd=tmp_path,
        env={"ONCUE_TEST_GATE": str(tmp_path)},
    )
    try:
        poll((tmp_path / "importing").exists, "serve to import the handlers")
        early.process.send_signal(signum)
        (tmp_path / "go").touch()
        assert early.wait() == 0
    finally:
        early.close()
    name = signal.Signals(signum).name
    assert f"server.signal signal={name} action=drain" in early.log
    assert "server.stopped" in early.log


def test_client_commands_talk_to_the_server(server: Server) -> None:
    def oncue(*args: str) -> subprocess.CompletedProcess[str]:
        command = [str(ONCUE), *args, "--url", server.url]
        return subprocess.run(command, capture_output=True, text=True, timeout=BOUND)

    submitted = oncue("submit", "double", "--payload", "21", "--wait")
    assert submitted.returncode == 0, submitted.stderr
    assert '"result": 42' in submitted.stdout
    assert oncue("tasks", "--status", "completed").returncode == 0
    assert '"successful": 1' in oncue("stats").stdout
    missing = oncue("status", "no-such-task")
    assert missing.returncode == 1
    assert missing.stderr == "oncue: no task with id 'no-such-task'\n"
    assert server.stop(signal.SIGINT) == 0


def test_serve_options_fall_back_to_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("PORT", "9000")
    monkeypatch.setenv("WORKER_COUNT", "7")
    monkeypatch.setenv("ONCUE_QUEUE_SIZE", "12")
    monkeypatch.setenv("QUEUE_SIZE", "99")  # the ONCUE_ form wins
    monkeypatch.setenv("DATABASE_URL", "memory://")
    options = parse_options(["serve"])
    assert (options.port, options.workers, options.queue_size) == (9000, 7, 12)
    assert (options.store, options.host, options.grace) == ("memory://", "127.0.0.1", 10.0)
    options = parse_options(["serve", "--port", "1234"])
    assert options.port == 1234


def test_defaults_without_environment(monkeypatch) -> None:
    for name in ("PORT", "ONCUE_PORT", "WORKER_COUNT", "ONCUE_WORKERS", "QUEUE_SIZE"):
        monkeypatch.delenv(name, raising=False)
    options = parse_options(["serve"])
    assert (options.port, options.workers, options.queue_size) == (8080, 5, 1000)


def test_no_builtins_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("ONCUE_NO_BUILTINS", raising=False)
    assert parse_options(["serve"]).builtins is True
    assert parse_options(["serve", "--no-builtins"]).builtins is False
    monkeypatch.setenv("ONCUE_NO_BUILTINS", "1")
    assert parse_options(["worker"]).builtins is False
    monkeypatch.setenv("ONCUE_NO_BUILTINS", "0")
    assert parse_options(["worker"]).builtins is True


DURATION_FLAGS = {"grace", "store_wait", "lease", "retention", "timeout", "delay", "ttl"}


def _every_option(command: click.Command) -> Iterator[click.Option]:
    for param in command.params:
        if isinstance(param, click.Option):
            yield param
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            yield from _every_option(sub)


def test_every_duration_flag_reads_the_one_grammar() -> None:
    durations = [flag for flag in _every_option(cli) if flag.name in DURATION_FLAGS]
    assert {flag.name for flag in durations} == DURATION_FLAGS
    for flag in durations:
        assert flag.type.convert("1h30m", flag, None) == 5400.0, flag.opts
        assert flag.type.convert("0.5s", flag, None) == 0.5, flag.opts
    serve = ["serve", "--grace", "0.5s", "--store-wait", "1.5m", "--lease", "500ms"]
    options = parse_options([*serve, "--retention", "2d"])
    assert (options.grace, options.store_wait, options.lease) == (0.5, 90.0, 0.5)
    assert options.retention == 2 * 86400.0


def test_duration_flags_refuse_what_is_not_a_duration_by_name() -> None:
    with pytest.raises(click.BadParameter, match="a duration is a number of seconds"):
        parse_options(["serve", "--grace", "soon"])
    with pytest.raises(click.BadParameter, match="a duration > 0 is needed here"):
        parse_options(["worker", "--store", "memory://", "--lease", "0s"])
