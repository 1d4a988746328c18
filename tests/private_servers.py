"""Database servers a test starts for itself, on a port of its own, stopped by pid.

The shared servers (127.0.0.1:6379, :5432) are never restarted or killed: a test that attacks
a server (kill -9, restart) starts a private one here.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

BOUND = 30.0  # seconds: a safety bound on every wait, never a timing assertion


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateRedis:
    """A `redis-server` on its own port, persisting every write to an append-only file in
    `directory` (so a kill -9 and a restart lose nothing it acknowledged)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it and return once it accepts connections."""
        command = [
            "redis-server",
            *("--port", str(self.port), "--bind", "127.0.0.1", "--save", ""),
            *("--appendonly", "yes", "--appendfsync", "always"),
            *("--dir", str(self.directory), "--logfile", str(self.directory / "redis.log")),
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + BOUND
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as probe:
                    probe.sendall(b"PING\r\n")
                    if probe.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.02)
        raise RuntimeError(f"the private redis-server on port {self.port} did not start")

    def kill(self, signum: int = signal.SIGKILL) -> None:
        """Send `signum` (kill -9 by default) and wait for it to end."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signum)
            self.process.wait(timeout=BOUND)
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()
