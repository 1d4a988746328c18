"""Real `oncue` processes for the tests that need one: start, read the banner, signal, poll.

Imported by test modules as `from servers import ...` (pytest puts this folder on sys.path).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ONCUE = Path(sys.executable).with_name("oncue")
BOUND = 30.0  # seconds: a safety bound on every wait, never a timing assertion
# Variables of the developer's shell that would change what a test's server does.
CLEARED = (
    "PORT",
    "WORKER_COUNT",
    "QUEUE_SIZE",
    "ONCUE_STORE",
    "DATABASE_URL",
    "REDIS_URL",
    "ONCUE_API_TOKENS",
)


class Oncue:
    """A running `oncue` command; its stderr is collected line by line in `stderr`."""

    def __init__(self, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None):
        environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
        for name in CLEARED:
            environment.pop(name, None)
        self.process = subprocess.Popen(
            [str(ONCUE), *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**environment, **(env or {})},
        )
        self.stderr: list[str] = []
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    @property
    def log(self) -> str:
        return "".join(self.stderr)

    def read_url(self) -> str:
        """The URL of the `listening on ...` banner (its first line of stdout)."""
        assert self.process.stdout is not None
        first = self.process.stdout.readline()
        match = re.search(r"listening on (http://\S+)", first)
        assert match, f"no banner: {first!r} {self.stderr}"
        return match.group(1)

    def stop(self, signum: int = signal.SIGTERM) -> int:
        """Send `signum`; returns the exit code once the process has ended."""
        self.process.send_signal(signum)
        return self.wait()

    def wait(self) -> int:
        """The exit code, once the process has ended and its stderr is read."""
        code = self.process.wait(timeout=BOUND)
        self._reader.join(timeout=BOUND)
        return code

    def close(self) -> None:
        """Kill it if it still runs, and close its pipes."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=BOUND)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.stderr.append(line)


class Server(Oncue):
    """`oncue serve` on a free port, memory store unless given one; `url` once it listens."""

    def __init__(
        self,
        *args: str,
        store: str = "memory://",  # not the default oncue.db in the working directory
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        super().__init__("serve", "--port", "0", "--store", store, *args, cwd=cwd, env=env)
        try:
            self.url = self.read_url()
        except BaseException:
            self.close()
            raise


@contextmanager
def running_server(*args: str, **options: Any) -> Iterator[Server]:
    """A `Server` for the block; killed at its end if the block did not stop it."""
    server = Server(*args, **options)
    try:
        yield server
    finally:
        server.close()


def poll(check: Callable[[], Any], what: str, bound: float = BOUND) -> Any:
    """Call `check` until it returns something truthy, within `bound` seconds."""
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.01)
    raise AssertionError(f"gave up waiting for {what}")


def recording_handlers(lease: float | None = None) -> str:
    """A handlers module (for `--handlers`) whose task type `record` appends "<pid> <task id>"
    to the file named by ONCUE_TEST_RUNS at the start of every execution (one O_APPEND write:
    atomic, whatever the processes), so the file is the ground truth of what ran where."""
    options = "max_retries=0" if lease is None else f"max_retries=0, lease={lease}"
    return f"""
import os

import trio

from oncue.actors import Registry, register_builtins

registry = register_builtins(Registry())
runs = os.open(os.environ["ONCUE_TEST_RUNS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)


@registry.task("record", {options})
async def record(ctx, payload):
    os.write(runs, f"{{os.getpid()}} {{ctx.task_id}}\\n".encode())
    await trio.sleep(0.002)
    return payload
"""


def recorded_runs(directory: Path) -> list[tuple[int, str]]:
    """(pid, task id) of every execution the `recording_handlers` wrote in `directory`."""
    path = directory / "runs"
    lines = path.read_text().splitlines() if path.exists() else []
    return [(int(pid), task_id) for pid, task_id in (line.split() for line in lines)]


def submit_batches(http: Any, count: int, per_request: int = 1000) -> list[str]:
    """POST `count` `record` tasks (payloads 0..count-1) in batches; their ids, in order."""
    accepted: list[str] = []
    for first in range(0, count, per_request):
        payloads = range(first, min(first + per_request, count))
        batch = [{"type": "record", "payload": n} for n in payloads]
        response = http.post("/api/v1/tasks/batch", json={"tasks": batch})
        assert response.status_code == 201, response.text
        accepted += [task["id"] for task in response.json()["tasks"]]
    return accepted
