"""The processes bench/chaos.py attacks: `oncue serve`, a private redis-server, a tmpfs.

Each is started for the scenario alone (its own port, its own directory) and stopped by pid.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ONCUE = Path(sys.executable).with_name("oncue")
START_BOUND = 60.0  # seconds a process gets to start


class Skipped(Exception):
    """The machine cannot run this scenario (no redis-server, no permission to mount)."""


class Server:
    """`oncue serve` on a free port with the scenario's handlers, as a context manager: killed
    (-9) at the end if it still runs."""

    def __init__(self, directory: Path, store: str) -> None:
        self.directory = directory
        environment = {**os.environ, "CHAOS_RUNS": str(directory / "runs"), "PYTHONUNBUFFERED": "1"}
        for name in ("ONCUE_API_TOKENS", "ONCUE_STORE", "DATABASE_URL", "REDIS_URL", "PORT"):
            environment.pop(name, None)
        command = [
            str(ONCUE),
            *("serve", "--port", "0", "--store", store, "--workers", "4"),
            *("--handlers", "chaos_handlers", "--log-level", "ERROR", "--lease", "3"),
        ]
        self.log = open(directory / "server.log", "a")  # noqa: SIM115 - closed in __exit__
        self.process = subprocess.Popen(
            command,
            cwd=directory,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        assert self.process.stdout is not None
        banner = self.process.stdout.readline()
        match = re.search(r"listening on (http://\S+)", banner)
        if match is None:
            self.kill()
            raise RuntimeError(f"oncue serve did not start: {banner!r}; see {self.log.name}")
        self.url = match.group(1)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.kill()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.log.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateRedis:
    """A redis-server on its own port, writing every command to an append-only file."""

    def __init__(self, directory: Path) -> None:
        if shutil.which("redis-server") is None:
            raise Skipped("redis-server is not installed")
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = [
            "redis-server",
            *("--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
            *("--appendonly", "yes", "--appendfsync", "always"),
            *("--dir", str(self.directory), "--logfile", str(self.directory / "redis.log")),
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + START_BOUND
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as probe:
                    probe.sendall(b"PING\r\n")
                    if probe.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the private redis-server on port {self.port} did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
        self.process = None


@contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` mounted at `where` for the block (root only; Skipped otherwise)."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        raise Skipped(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


class PrivatePostgres:
    """A PostgreSQL cluster of its own (initdb in the scenario's directory, its own port),
    started and stopped with pg_ctl; run as the `postgres` user when we are root."""

    def __init__(self, directory: Path) -> None:
        found = shutil.which("initdb") or next(
            iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))), None
        )
        if found is None:
            raise Skipped("PostgreSQL's initdb is not installed")
        self.bin = Path(found).parent
        self.prefix: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            if shutil.which("runuser") is None:
                raise Skipped("running as root without runuser: cannot start PostgreSQL")
            self.prefix = ["runuser", "-u", "postgres", "--"]
        self.data = directory / "pgdata"
        self.port = free_port()
        self.url = f"postgresql://oncue@127.0.0.1:{self.port}/postgres"
        os.chmod(directory, 0o755)
        self.data.mkdir(mode=0o700)
        if self.prefix:
            shutil.chown(self.data, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "oncue", "--auth", "trust", "--no-sync")

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [*self.prefix, str(self.bin / program), *args],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=START_BOUND,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        log = str(self.data / "server.log")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", log, "-w", "start")

    def crash(self) -> None:
        """Stop it as a crash would (immediate: no checkpoint; recovery at the next start)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def kill(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            self.crash()
