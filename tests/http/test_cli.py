"""The real `oncue serve` process: README curl calls, client commands, SIGTERM mid-work."""

from __future__ import annotations

import functools
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from oncue.http.cli import build_parser

ONCUE = Path(sys.executable).with_name("oncue")
BOUND = 30.0  # seconds: a safety bound on every wait below, never a timing assertion


class Server:
    """A running `oncue serve` on a free port; stderr is collected line by line."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for name in ("PORT", "WORKER_COUNT", "QUEUE_SIZE", "DATABASE_URL", "REDIS_URL"):
            env.pop(name, None)
        env["ONCUE_STORE"] = "memory://"  # not the default oncue.db in the working directory
        self.process = subprocess.Popen(
            [str(ONCUE), "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.stderr: list[str] = []
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()
        self.url = self._read_url()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)

    def _read_url(self) -> str:
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        match = re.search(r"listening on (http://\S+)", first)
        assert match, f"no banner: {first!r} {self.stderr}"
        return match.group(1)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=BOUND)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        code = self.process.wait(timeout=BOUND)
        self._reader.join(timeout=BOUND)
        return code


@pytest.fixture
def server() -> Iterator[Server]:
    running = Server("--workers", "2")
    yield running
    running.close()


def poll(check, what: str):
    """Call `check` until it returns something truthy, within BOUND seconds."""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.01)
    raise AssertionError(f"gave up waiting for {what}")


def test_readme_calls_then_sigterm_mid_work_loses_nothing(tmp_path) -> None:
    store = f"sqlite:///{tmp_path}/tasks.db"
    server = Server("--workers", "2", "--store", store, "--grace", "0.05")
    try:
        with httpx.Client(base_url=server.url, timeout=BOUND) as http:
            accepted = _readme_calls_then_work(http)
        assert server.stop(signal.SIGTERM) == 0  # drains (briefly), exits cleanly
    finally:
        server.close()
    log = "".join(server.stderr)
    assert "server.stopped" in log
    left = re.search(r"server\.drained unfinished=(\d+) interrupted=(\d+)", log)
    assert left, log
    assert int(left[1]) > 0, "SIGTERM came mid-work: some tasks were left for the restart"
    restarted = Server("--workers", "2", "--store", store)  # what was left runs now
    try:
        with httpx.Client(base_url=restarted.url, timeout=BOUND) as http:
            for task_id in accepted:
                done = poll(functools.partial(_finished, http, task_id), f"task {task_id}")
                assert done["status"] == "completed", done
        assert restarted.stop(signal.SIGTERM) == 0
    finally:
        restarted.close()


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
    assert "404" in missing.stderr
    assert server.stop(signal.SIGINT) == 0


def test_serve_options_fall_back_to_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("PORT", "9000")
    monkeypatch.setenv("WORKER_COUNT", "7")
    monkeypatch.setenv("ONCUE_QUEUE_SIZE", "12")
    monkeypatch.setenv("QUEUE_SIZE", "99")  # the ONCUE_ form wins
    monkeypatch.setenv("DATABASE_URL", "memory://")
    options = build_parser().parse_args(["serve"])
    assert (options.port, options.workers, options.queue_size) == (9000, 7, 12)
    assert (options.store, options.host, options.grace) == ("memory://", "127.0.0.1", 10.0)
    options = build_parser().parse_args(["serve", "--port", "1234"])
    assert options.port == 1234


def test_defaults_without_environment(monkeypatch) -> None:
    for name in ("PORT", "ONCUE_PORT", "WORKER_COUNT", "ONCUE_WORKERS", "QUEUE_SIZE"):
        monkeypatch.delenv(name, raising=False)
    options = build_parser().parse_args(["serve"])
    assert (options.port, options.workers, options.queue_size) == (8080, 5, 1000)
