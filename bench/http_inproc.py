"""The app's own cost of a submit: requests through the ASGI app in process, no sockets.

``python -m bench.http_inproc [--workload http-single|http-batch] [--rounds 7]`` calls the app
the way Hypercorn's trio worker does (a scope, the body waiting in a trio memory channel, a
send that collects the answer) from 32 concurrent callers, with the memory store and 8 workers
running the tasks. It prints µs a request for: the bare endpoint of bench/http_bare.py; oncue
as served (the submit routes answered by the gateway directly); the same with a bearer token
checked; oncue with every request handed to Quart (the path the submit routes took before).
Variants alternate round by round; the minimum over rounds is the figure the machine's load
disturbs least. Hypercorn's own cost (parsing, sockets) is left out: the bare server's CPU a
request, from ``python -m bench.http_pairs``, is nearly all of it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import trio

from bench.http_bare import app as bare_app
from oncue.actors import open_engine
from oncue.http.app import create_app
from oncue.http.auth import AuthSettings, parse_api_tokens

CONCURRENCY = 32
TOKEN = "bench-token"


def scope_for(path: str, body: bytes, token: str | None = None) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")]
    headers.append((b"content-length", b"%d" % len(body)))
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5555),
        "server": ("127.0.0.1", 8080),
    }


async def call(app: Any, scope: dict[str, Any], body: bytes) -> None:
    """One request; the body waits in a trio memory channel, as Hypercorn's trio worker
    hands it over (after it, receive blocks until the connection ends)."""
    status: list[int] = []
    to_app, from_server = trio.open_memory_channel[dict[str, Any]](10)
    to_app.send_nowait({"type": "http.request", "body": body, "more_body": False})

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    await app(dict(scope), from_server.receive, send)
    if status != [201]:
        raise RuntimeError(f"answered {status}")


async def per_request(app: Any, scope: dict[str, Any], body: bytes, count: int) -> float:
    """µs a request, `count` requests from CONCURRENCY concurrent callers."""
    each = count // CONCURRENCY

    async def caller() -> None:
        for _ in range(each):
            await call(app, scope, body)

    began = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(CONCURRENCY):
            nursery.start_soon(caller)
    return (time.perf_counter() - began) / (each * CONCURRENCY) * 1e6


async def main(workload: str, rounds: int) -> dict[str, list[float]]:
    batch = workload == "http-batch"
    path = "/api/v1/tasks/batch" if batch else "/api/v1/tasks"
    tasks = [{"type": "double", "payload": n} for n in range(100)]
    body = json.dumps({"tasks": tasks} if batch else tasks[0]).encode()
    count = 640 if batch else 3200
    async with open_engine(workers=8, queue_size=10**8) as engine:
        served = create_app(engine)
        secured = create_app(engine, auth=AuthSettings(api_tokens=parse_api_tokens(f"b:{TOKEN}")))
        quart = create_app(engine)
        quart.asgi_app.direct = {}  # type: ignore[attr-defined]
        variants = {
            "bare": (bare_app, scope_for(path, body)),
            "oncue": (served, scope_for(path, body)),
            "oncue-auth": (secured, scope_for(path, body, TOKEN)),
            "oncue-via-quart": (quart, scope_for(path, body)),
        }
        found: dict[str, list[float]] = {name: [] for name in variants}
        # One app's lifespan runs the event follower (task metrics), as in a served process;
        # it follows the tasks every variant submits.
        async with served.test_app():
            for _ in range(rounds):
                for name, (app, scope) in variants.items():
                    found[name].append(await per_request(app, scope, body, count))
                    await engine.wait_idle()  # the tasks of one variant never run in the next
    return found


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.http_inproc", description=__doc__)
    parser.add_argument("--workload", default="http-single", choices=["http-single", "http-batch"])
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(sys.argv[1:])
    results = trio.run(main, args.workload, args.rounds)
    for name, values in results.items():
        print(
            f"{name:16} min {min(values):7.1f} µs  median {statistics.median(values):7.1f} µs"
            f"  a request ({len(values)} rounds)"
        )
