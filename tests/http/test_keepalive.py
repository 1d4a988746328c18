"""Early answers on kept-alive connections: the server closes them, says so, and keeps no fd.

Served by Hypercorn on loopback: what is tested is what the socket does (issue 17 items 1, 6).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import h11
import httpx
import pytest
import trio
from quart_trio import QuartTrio

from oncue.actors import Engine
from oncue.http.app import create_app
from oncue.http.auth import AuthSettings, parse_api_tokens
from oncue.http.serve import serve

BOUND = 30.0  # a safety bound on every wait, never a timing assertion
TOKEN = {"Authorization": "Bearer token-a"}


@asynccontextmanager
async def serving(app: QuartTrio, engine: Engine) -> AsyncIterator[int]:
    """Serve `app` on a free loopback port for the block; yields the port."""
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve, engine, "127.0.0.1", 0, app=app, shutdown=stop))
        yield port
        stop.set()


def guarded_app(engine: Engine) -> QuartTrio:
    app = create_app(
        engine,
        max_body_size=1000,
        auth=AuthSettings(api_tokens=parse_api_tokens("a:token-a")),
    )
    app.config["BODY_TIMEOUT"] = 0.2  # Quart's routes (/submit); the direct ones keep 60 s
    return app


def read_answer(connection: socket.socket) -> h11.Response:
    """Read one whole response (head and body) from `connection`."""
    parser = h11.Connection(h11.CLIENT)
    parser.send(h11.Request(method="GET", target="/", headers=[("Host", "x")]))
    parser.send(h11.EndOfMessage())
    response = None
    while True:
        event = parser.next_event()
        if event is h11.NEED_DATA:
            parser.receive_data(connection.recv(65536))
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.EndOfMessage):
            assert response is not None
            return response


def read_to_eof(connection: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    data = b""
    while chunk := connection.recv(65536):
        data += chunk
    return data


def early_answer(port: int, head: bytes, rest: bytes) -> tuple[socket.socket, h11.Response]:
    """Send `head`, read the answer, then send `rest` and another request; returns the
    connection once the server closed it (a blocking client in a thread, as a real one is:
    a client in the server's own event loop would hide the race that kept sockets open)."""
    connection = socket.create_connection(("127.0.0.1", port), timeout=BOUND)
    connection.sendall(head + b"Host: x\r\n\r\n")
    response = read_answer(connection)  # answered before the body came
    with contextlib.suppress(OSError):  # the server may have closed it already
        connection.sendall(rest + b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_to_eof(connection) == b"", head  # nothing more: it was closed
    return connection, response


# (request head, what arrives only after the answer, the early answer's status)
EARLY_ANSWERS = [
    (b"POST /health HTTP/1.1\r\nContent-Length: 7\r\n", b"abcdefg", 405),
    (b"PUT /openapi.json HTTP/1.1\r\nContent-Length: 7\r\n", b"abcdefg", 405),
    (b"POST /docs HTTP/1.1\r\nContent-Length: 7\r\n", b"abcdefg", 405),
    (b"POST /api/v1/tasks HTTP/1.1\r\nContent-Length: 7\r\n", b"abcdefg", 401),
    (b"GET /api/v1/tasks HTTP/1.1\r\nContent-Length: 7\r\n", b"abcdefg", 401),
    (
        b"POST /api/v1/tasks HTTP/1.1\r\nAuthorization: Bearer token-a\r\nContent-Length: 5000\r\n",
        b"x" * 5000,
        413,
    ),
    (
        b"POST /submit HTTP/1.1\r\nAuthorization: Bearer token-a\r\nContent-Length: 7\r\n",
        b"abcdefg",
        408,
    ),
]


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts fds in /proc")
async def test_early_answers_close_the_connection_and_hold_no_descriptor(
    engine: Engine,
) -> None:
    async with serving(guarded_app(engine), engine) as port:
        before = open_descriptors()
        connections = []
        for head, rest, status in EARLY_ANSWERS * 5:
            connection, response = await trio.to_thread.run_sync(early_answer, port, head, rest)
            connections.append(connection)
            assert response.status_code == status, head
            assert (b"connection", b"close") in response.headers, head
        # the server holds none of them: only our own ends are open
        assert open_descriptors() == before + len(connections)
        for connection in connections:
            connection.close()
        assert open_descriptors() == before


async def test_a_keep_alive_client_goes_on_after_early_answers(engine: Engine) -> None:
    async with (
        serving(guarded_app(engine), engine) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http,
    ):
        refused = await http.post("/api/v1/tasks", json={"type": "echo"})
        assert refused.status_code == 401  # its body was all there: the connection is kept
        too_big = await http.post("/api/v1/tasks", content=b"x" * 5000, headers=TOKEN)
        assert too_big.status_code == 413
        assert (await http.get("/health")).status_code == 200
        accepted = await http.post("/api/v1/tasks", json={"type": "echo"}, headers=TOKEN)
        assert accepted.status_code == 201


async def test_answers_after_the_whole_body_keep_the_connection(engine: Engine) -> None:
    body = b'{"type": "echo"}'
    head = b"POST /api/v1/tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer token-a\r\n"
    request = head + b"Content-Length: %d\r\n\r\n" % len(body) + body

    def three_on_one_connection(port: int) -> list[h11.Response]:
        with socket.create_connection(("127.0.0.1", port), timeout=BOUND) as connection:
            answers = []
            for _ in range(3):
                connection.sendall(request)
                answers.append(read_answer(connection))
            return answers

    async with serving(guarded_app(engine), engine) as port:
        for response in await trio.to_thread.run_sync(three_on_one_connection, port):
            assert response.status_code == 201
            assert (b"connection", b"close") not in response.headers


# httpx wraps any streamed body in an async generator of its own, which it leaves unfinished
# when the server stops reading: a warning about httpx, not about the server.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@pytest.mark.parametrize("path", ["/api/v1/jobs", "/submit", "/api/v1/tasks"])
async def test_an_oversized_chunked_body_is_413_and_the_client_goes_on(
    engine: Engine, path: str
) -> None:
    async with (
        serving(guarded_app(engine), engine) as port,
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=TOKEN) as http,
    ):
        with trio.fail_after(BOUND):
            too_big = await http.post(path, content=Chunks(50, b"x" * 4096))
            assert too_big.status_code == 413
            assert too_big.json()["error"]["code"] == "body_too_large"
            assert (await http.get("/health")).status_code == 200


class Chunks:
    """An async iterable body: httpx sends it chunked."""

    def __init__(self, count: int, chunk: bytes) -> None:
        self.left = count
        self.chunk = chunk

    def __aiter__(self) -> Chunks:
        return self

    async def __anext__(self) -> bytes:
        if self.left == 0:
            raise StopAsyncIteration
        self.left -= 1
        return self.chunk
