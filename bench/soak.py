"""Soak: hold 1,000 keep-alive connections to a real `oncue serve` on loopback for 60 s.

    python bench/soak.py [--connections 1000] [--seconds 60] [--rate-limit 0] [--store URL]

Each connection loops over a mix of requests (40% submits, 40% reads of a task it submitted,
20% lists) for the duration. Reports the requests by status, errors (anything but 2xx and
429, plus broken connections; the soak passes only with none), p50/p99/max latency and the
server's peak RSS, as a summary and one JSON line. Not part of the test suite. Bounded: the
run is cancelled `--seconds` + 90 s after it starts whatever happens, and the server is killed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import psutil
import trio

ONCUE = Path(sys.executable).with_name("oncue")
CONNECT_SECONDS = 30.0
DRAIN_SECONDS = 60.0  # for requests in flight when the time is up
REQUEST_SECONDS = 30.0  # a request unanswered this long counts as an error (a stall)
MIX = ("submit", "submit", "get", "get", "list")


class Connection:
    """One keep-alive HTTP/1.1 connection with a minimal client (cheap next to the server)."""

    def __init__(self, stream: trio.SocketStream, host: str) -> None:
        self.stream, self.host, self.buffer = stream, host, b""

    async def request(self, method: str, path: str, body: Any = None) -> tuple[int, bytes]:
        data = b"" if body is None else json.dumps(body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Length: {len(data)}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        await self.stream.send_all(head.encode() + b"\r\n" + data)
        while b"\r\n\r\n" not in self.buffer:
            await self._read()
        header, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = header.decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        while len(self.buffer) < length:
            await self._read()
        answer, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(lines[0].split()[1]), answer

    async def _read(self) -> None:
        chunk = await self.stream.receive_some(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buffer += chunk


class Tally:
    def __init__(self) -> None:
        self.statuses: Counter[str] = Counter()
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.open = 0
        self.peak_open = 0
        self.until = float("inf")  # set when every connection is open
        self.wanted = 0
        self.ready = 0
        self.all_open = trio.Event()


async def connect(port: int, tally: Tally) -> Connection:
    deadline = trio.current_time() + CONNECT_SECONDS
    while True:
        try:
            stream = await trio.open_tcp_stream("127.0.0.1", port)
            break
        except OSError:
            if trio.current_time() > deadline:
                raise
            await trio.sleep(0.05)
    tally.open += 1
    tally.peak_open = max(tally.peak_open, tally.open)
    return Connection(stream, f"127.0.0.1:{port}")


async def drive(number: int, port: int, start: trio.Event, tally: Tally) -> None:
    """One connection's loop: opens, waits until all are open, then requests until `until`."""
    connection = await connect(port, tally)
    # One answered request first: the connection is then accepted and held by the server,
    # not waiting in its accept queue. (Under load, Hypercorn's accept loop gets one turn per
    # trio scheduling round, so connections opened during the load wait long to be accepted.)
    await connection.request("GET", "/health")
    tally.ready += 1
    if tally.ready >= tally.wanted:
        tally.all_open.set()
    await start.wait()
    mine: list[str] = []
    step = number
    while trio.current_time() < tally.until:
        kind = MIX[step % len(MIX)]
        step += 1
        if kind == "get" and not mine:
            kind = "submit"
        began = time.perf_counter()
        try:
            with trio.fail_after(REQUEST_SECONDS):
                status, answer = await one_request(connection, kind, step, mine)
        except (OSError, ConnectionError, trio.BrokenResourceError, trio.TooSlowError) as error:
            tally.errors.append(f"{kind}: {error!r}")
            tally.open -= 1
            connection = await connect(port, tally)
            continue
        tally.latencies.append(time.perf_counter() - began)
        if kind == "submit" and status == 201:
            mine = [json.loads(answer)["id"], *mine[:9]]
        tally.statuses[f"{kind} {status}"] += 1
        if not (200 <= status < 300 or status == 429):
            tally.errors.append(f"{kind} {status}: {answer[:200]!r}")
    tally.open -= 1
    await connection.stream.aclose()


async def one_request(
    connection: Connection, kind: str, step: int, mine: list[str]
) -> tuple[int, bytes]:
    if kind == "submit":
        return await connection.request(
            "POST", "/api/v1/tasks", {"type": "echo", "payload": {"n": step}}
        )
    if kind == "get":
        return await connection.request("GET", f"/api/v1/tasks/{mine[0]}")
    return await connection.request("GET", "/api/v1/tasks?limit=20")


async def sample_server(pid: int, peak: list[int]) -> None:
    """Peak RSS, and the peak of connections the server itself holds (accepted, not queued)."""
    process = psutil.Process(pid)
    while True:
        try:
            peak[0] = max(peak[0], process.memory_info().rss)
            peak[1] = max(peak[1], len(process.net_connections(kind="tcp")) - 1)
        except psutil.Error:
            return
        await trio.sleep(1.0)


async def progress(tally: Tally) -> None:
    """A line on stderr every 10 s, so a long run shows it is alive."""
    while True:
        await trio.sleep(10)
        print(
            f"soak: open={tally.open} requests={len(tally.latencies)} errors={len(tally.errors)}",
            file=sys.stderr,
        )


def start_server(rate_limit: float, store: str) -> tuple[subprocess.Popen[str], int]:
    command = [str(ONCUE), "serve", "--port", "0", "--workers", "8", "--store", store]
    command += ["--queue-size", "1000000", "--log-level", "WARNING"]
    command += ["--rate-limit", str(rate_limit)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    match = re.search(r"listening on http://[^:]+:(\d+)", server.stdout.readline())
    if match is None:
        server.kill()
        raise SystemExit("soak: oncue serve did not start")
    return server, int(match.group(1))


def stop_server(server: subprocess.Popen[str]) -> None:
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


async def soak(options: argparse.Namespace, port: int, pid: int) -> dict[str, Any]:
    tally, peak, start = Tally(), [0, 0], trio.Event()
    held, began, connect_seconds = 0, trio.current_time(), 0.0
    with trio.move_on_after(CONNECT_SECONDS + options.seconds + DRAIN_SECONDS) as bound:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sample_server, pid, peak)
            nursery.start_soon(progress, tally)
            tally.wanted = options.connections
            async with trio.open_nursery() as clients:
                for number in range(options.connections):
                    clients.start_soon(drive, number, port, start, tally)
                with trio.move_on_after(CONNECT_SECONDS):
                    await tally.all_open.wait()
                connect_seconds = trio.current_time() - began
                held = tally.ready
                began = trio.current_time()
                tally.until = began + options.seconds
                start.set()
            nursery.cancel_scope.cancel()
    elapsed = min(trio.current_time(), tally.until) - began
    requests = len(tally.latencies)
    return {
        "store": options.store,
        "connections": options.connections,
        "connections_held": held,
        "connect_seconds": round(connect_seconds, 1),
        "seconds": round(elapsed, 1),
        "cut_short": bound.cancelled_caught,
        "requests": requests,
        "requests_per_second": round(requests / max(elapsed, 1e-9)),
        "statuses": dict(sorted(tally.statuses.items())),
        "errors": len(tally.errors),
        "first_errors": tally.errors[:5],
        "p50_ms": round(percentile(tally.latencies, 0.50) * 1000, 1),
        "p99_ms": round(percentile(tally.latencies, 0.99) * 1000, 1),
        "max_ms": round(max(tally.latencies, default=0.0) * 1000, 1),
        "server_peak_rss_mib": round(peak[0] / 2**20, 1),
        "server_peak_connections": peak[1],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate-limit", type=float, default=0.0, help="passed to oncue serve")
    parser.add_argument("--store", default="memory://", help="passed to oncue serve")
    options = parser.parse_args()
    server, port = start_server(options.rate_limit, options.store)
    try:
        report = trio.run(soak, options, port, server.pid)
    finally:
        stop_server(server)
    for name, value in report.items():
        print(f"{name:>22}: {value}")
    print(json.dumps(report))
    return 0 if report["errors"] == 0 and not report["cut_short"] else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
