"""Redis and PostgreSQL for the peers: found on 127.0.0.1, or started (and stopped) by us.

Also the guard against a stray consumer: a run on Redis db 13 is refused while another client
is attached to that db, since a leftover worker silently halves the numbers.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REDIS_PORT = 6379
PG_PORT = 5432
BENCH_DB = 13  # the Redis db every peer driver uses (bench/peers/_common.REDIS_URL)


class ServiceError(RuntimeError):
    """A service the peers need is neither running nor startable here."""


def listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
        return True
    return False


def redis_command(*args: str, timeout: float = 5.0) -> bytes:
    """Send one command over RESP and return the raw reply (enough for INFO, CLIENT LIST)."""
    payload = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", REDIS_PORT), timeout) as connection:
        connection.sendall(payload.encode())
        reply = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunk = connection.recv(65536)
            reply += chunk
            if not chunk or _complete(reply):
                break
    return reply


def _complete(reply: bytes) -> bool:
    if reply[:1] == b"$":
        header, _, rest = reply.partition(b"\r\n")
        return len(rest) >= int(header[1:]) + 2
    return reply.endswith(b"\r\n")


def other_redis_clients() -> list[str]:
    """Clients other than this query attached to the bench db (each as its CLIENT LIST line)."""
    text = redis_command("CLIENT", "LIST").decode(errors="replace")
    return [
        line
        for line in text.splitlines()
        if f" db={BENCH_DB} " in line and "cmd=client|list" not in line
    ]


def wait_redis_quiet(seconds: float = 10.0) -> list[str]:
    """Wait (bounded) until no other client is attached to the bench db; return any left."""
    deadline = time.monotonic() + seconds
    while (others := other_redis_clients()) and time.monotonic() < deadline:
        time.sleep(0.5)
    return others


def pg_sessions() -> list[str]:
    """Sessions attached to the bench database (psql; empty if psql is missing)."""
    if not shutil.which("psql"):
        return []
    query = "SELECT pid, application_name FROM pg_stat_activity WHERE datname = 'oncue_bench'"
    argv = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-tAc", query]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    return [line for line in done.stdout.splitlines() if line.strip()]


@contextlib.contextmanager
def services(needed: set[str]) -> Iterator[dict[str, str]]:
    """Make sure the needed services listen on 127.0.0.1; stop those we started, by pid.

    Yields {service: "already running" | "started by bench" | "unavailable: why"}.
    """
    started: list[subprocess.Popen[bytes]] = []
    status: dict[str, str] = {}
    try:
        for name in sorted(needed):
            starter = {"redis": _start_redis, "postgres": _start_postgres}.get(name)
            if starter is None:
                continue
            port = REDIS_PORT if name == "redis" else PG_PORT
            if listening(port):
                status[name] = "already running"
                continue
            try:
                started.append(starter())
                _wait_listening(port, 30.0, name)
                status[name] = "started by bench"
            except (ServiceError, OSError, subprocess.SubprocessError) as error:
                status[name] = f"unavailable: {error}"
        yield status
    finally:
        for process in started:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)


def _wait_listening(port: int, seconds: float, name: str) -> None:
    deadline = time.monotonic() + seconds
    while not listening(port):
        if time.monotonic() > deadline:
            raise ServiceError(f"{name} did not listen on 127.0.0.1:{port} in {seconds:.0f}s")
        time.sleep(0.2)


def _start_redis() -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceError("redis-server not installed (apt-get install redis-server)")
    argv = [binary, "--bind", "127.0.0.1", "--port", str(REDIS_PORT), "--save", ""]
    argv += ["--appendonly", "no"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _start_postgres() -> subprocess.Popen[bytes]:
    """initdb a throwaway cluster (trust auth) and run it as the postgres user."""
    binaries = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not binaries or not shutil.which("runuser"):
        raise ServiceError("PostgreSQL server binaries not found (apt-get install postgresql)")
    bin_dir = binaries[-1].parent
    data = Path(tempfile.mkdtemp(prefix="oncue-bench-pg-"))
    shutil.chown(data, "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    initdb = [*as_postgres, str(bin_dir / "initdb"), "-D", str(data), "-A", "trust"]
    subprocess.run([*initdb, "-U", "postgres"], capture_output=True, check=True, timeout=120)
    argv = [*as_postgres, str(binaries[-1]), "-D", str(data), "-p", str(PG_PORT)]
    argv += ["-c", "listen_addresses=127.0.0.1", "-k", str(data)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def server_versions() -> dict[str, str]:
    versions: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in redis_command("INFO", "server").decode().splitlines():
            if line.startswith("redis_version:"):
                versions["redis-server"] = line.split(":", 1)[1]
    if shutil.which("psql") and listening(PG_PORT):
        argv = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-tAc"]
        done = subprocess.run(
            [*argv, "SHOW server_version"], capture_output=True, text=True, timeout=10, check=False
        )
        if done.returncode == 0:
            versions["postgresql"] = done.stdout.strip()
    return versions
