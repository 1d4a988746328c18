"""HTTP submits from a concurrent loopback client: oncue's API beside a bare Hypercorn endpoint.

Run by the orchestrator as ``python -m bench.http_bench '<spec json>'``.  Variant ``oncue``
starts the real ``oncue serve`` (8 workers, ``--store memory://`` explicitly: the default is a
SQLite file in the working directory, which belongs to the durable workload; log level
WARNING); ``oncue-auth`` the same with a static API token required (``ONCUE_API_TOKENS``), which
the client sends; variant ``bare`` starts bench/http_bare.py on the same Hypercorn.  The client is a
raw HTTP/1.1 client on trio, `concurrency` keep-alive connections, in this process.  Workload
``http-single`` posts one task per request to ``/api/v1/tasks``; ``http-batch`` posts
``batch`` tasks per request to ``/api/v1/tasks/batch``.  (This module is not named ``http``:
a bench/http.py would shadow the standard library when a script in bench/ runs.)
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import trio

from bench.peers._common import (
    Spec,
    emit,
    percentile,
    read_spec,
    start_process,
    stop_process,
    versions_of,
)

WARMUP_REQUESTS = 50
TOKEN = "bench-token-0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(variant: str, port: int) -> subprocess.Popen[bytes]:
    if variant == "bare":
        return start_process([sys.executable, "-m", "bench.http_bare", str(port)])
    oncue = str(Path(sys.executable).with_name("oncue"))
    argv = [oncue, "serve", "--port", str(port), "--workers", "8", "--store", "memory://"]
    argv += ["--queue-size", "2000000", "--log-level", "WARNING"]
    env = {"ONCUE_API_TOKENS": f"bench:{TOKEN}"} if variant == "oncue-auth" else {}
    return start_process(argv, env)


def body(spec: Spec, number: int) -> dict[str, Any]:
    if spec.workload == "http-batch":
        batch = int(spec.extra.get("batch", 100))
        return {"tasks": [{"type": "double", "payload": number * batch + i} for i in range(batch)]}
    return {"type": "double", "payload": number}


class Connection:
    """One keep-alive HTTP/1.1 connection: a raw client, so the client costs far less CPU than
    the servers it measures (httpx on trio managed ~200 req/s here, a fifth of the server)."""

    def __init__(self, stream: trio.SocketStream, port: int, token: str | None = None) -> None:
        self.stream, self.port, self.buffer = stream, port, b""
        self.extra = f"Authorization: Bearer {token}\r\n" if token else ""

    async def post(self, path: str, payload: Any) -> tuple[int, bytes]:
        data = json.dumps(payload).encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{self.extra}"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        )
        await self.stream.send_all(head.encode() + data)
        while b"\r\n\r\n" not in self.buffer:
            await self._read()
        header, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = header.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        length = next(
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length")
        )
        while len(self.buffer) < length:
            await self._read()
        response, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, response

    async def _read(self) -> None:
        chunk = await self.stream.receive_some(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk


async def connect(port: int, seconds: float, token: str | None = None) -> Connection:
    deadline = trio.current_time() + seconds
    while True:
        try:
            return Connection(await trio.open_tcp_stream("127.0.0.1", port), port, token)
        except OSError:
            if trio.current_time() > deadline:
                raise
            await trio.sleep(0.1)


async def blast(connections: list[Connection], path: str, spec: Spec, count: int) -> list[float]:
    """`count` POSTs spread over the connections; returns each request's seconds."""
    latencies: list[float] = []
    numbers = iter(range(count))

    async def drive(connection: Connection) -> None:
        for number in numbers:
            began = time.perf_counter()
            status, answer = await connection.post(path, body(spec, number))
            latencies.append(time.perf_counter() - began)
            if status != 201:
                raise RuntimeError(f"POST {path} answered {status}: {answer[:200]!r}")

    async with trio.open_nursery() as nursery:
        for connection in connections:
            nursery.start_soon(drive, connection)
    return latencies


async def main(spec: Spec) -> dict[str, Any]:
    port = free_port()
    path = "/api/v1/tasks/batch" if spec.workload == "http-batch" else "/api/v1/tasks"
    per_request = int(spec.extra.get("batch", 100)) if spec.workload == "http-batch" else 1
    server = start_server(spec.variant, port)
    try:
        with trio.fail_after(spec.timeout):
            token = TOKEN if spec.variant == "oncue-auth" else None
            connections = [await connect(port, 30, token) for _ in range(spec.concurrency)]
            await blast(connections, path, spec, WARMUP_REQUESTS)
            samples, p50s, p99s, cpu = [], [], [], []
            for _ in range(spec.runs):
                began, cpu_before = time.perf_counter(), cpu_seconds(server.pid)
                latencies = await blast(connections, path, spec, spec.n)
                samples.append(spec.n * per_request / (time.perf_counter() - began))
                cpu.append((cpu_seconds(server.pid) - cpu_before) / spec.n * 1e6)
                p50s.append(percentile(latencies, 50) * 1000)
                p99s.append(percentile(latencies, 99) * 1000)
            for connection in connections:
                await connection.stream.aclose()
    finally:
        stop_process(server)
    return {
        "samples": samples,
        "p50_ms": p50s,
        "p99_ms": p99s,
        "server_cpu_us_per_request": cpu,
        "latency": "request round trip",
    }


def cpu_seconds(pid: int) -> float:
    """The CPU time (user + system) the server process has used so far (Linux /proc): moves
    less with the load of the machine than requests/s do."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


if __name__ == "__main__":
    spec = read_spec()
    versions = versions_of("oncue", "hypercorn", "quart", "quart-trio", "trio")
    try:
        emit({"ok": True, "versions": versions, **trio.run(main, spec)})
    except Exception as error:
        emit({"ok": False, "error": f"{type(error).__name__}: {error}", "versions": versions})
        raise
