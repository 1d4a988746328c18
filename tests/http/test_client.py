"""oncue.Client and oncue.AsyncClient against a real `oncue serve`: from plain sync code, an
asyncio program and a trio program, with a token; and what they raise for every error."""

from __future__ import annotations

import asyncio
import datetime
import http.server
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from servers import Server, running_server

import oncue
from oncue import (
    AsyncClient,
    Client,
    InvalidField,
    NotAnOncueServer,
    QueueFull,
    RequestRejected,
    ServerUnreachable,
    Submission,
    TaskAlreadyFinished,
    TaskNotFailed,
    TaskNotFound,
    TaskState,
    UnknownTaskType,
)

TOKEN = "client-test-token"
QUEUE_SIZE = 20


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    tokens = {"ONCUE_API_TOKENS": f"tester:{TOKEN}:admin"}
    with running_server("--workers", "2", "--queue-size", str(QUEUE_SIZE), env=tokens) as served:
        yield served


@pytest.fixture
def client(server: Server) -> Iterator[Client]:
    with Client(server.url, token=TOKEN) as connected:
        yield connected


def test_sync_submit_wait_get(client: Client) -> None:
    task = client.submit("double", 21, priority="high", max_retries=1, timeout=5)
    assert isinstance(task, oncue.Task)
    assert (task.type, task.payload, task.priority, task.max_retries) == ("double", 21, 2, 1)
    done = client.wait(task.id, timeout=30)
    assert (done.state, done.result) == (TaskState.COMPLETED, 42)
    assert done.finished_at is not None
    assert done.finished_at >= done.created_at
    assert client.get(task.id) == done


def test_sync_key_delay_run_at_and_batches(client: Client) -> None:
    first = client.submit("echo", "once", key="only-once", delay=0)
    assert client.submit("echo", "twice", key="only-once").id == first.id
    later = datetime.datetime(2100, 1, 1, tzinfo=datetime.UTC)
    scheduled = client.submit("echo", None, run_at=later)
    assert scheduled.run_at == later.timestamp()
    assert client.cancel(scheduled.id).state is TaskState.CANCELLED
    batch = client.submit_many([Submission("double", n) for n in range(3)])
    assert [client.wait(task.id, timeout=30).result for task in batch] == [0, 2, 4]


def test_sync_list_pages_through_every_task(client: Client) -> None:
    submitted = {client.submit("echo", n).id for n in range(5)}
    seen: list[str] = []
    page = client.list(type="echo", limit=2)
    while True:
        assert len(page.tasks) <= 2
        seen += [task.id for task in page.tasks]
        if page.next_cursor is None:
            break
        page = client.list(type="echo", limit=2, cursor=page.next_cursor)
    assert submitted <= set(seen)
    assert len(seen) == len(set(seen))


def test_sync_cancel_retry_stats_and_the_engines_errors(client: Client) -> None:
    sleeping = client.submit("sleep", 60)
    assert client.cancel(sleeping.id).state is TaskState.CANCELLED
    with pytest.raises(TaskAlreadyFinished) as finished:
        client.cancel(sleeping.id)
    assert (finished.value.task_id, finished.value.state) == (sleeping.id, "cancelled")
    with pytest.raises(TaskNotFailed):
        client.retry(sleeping.id)
    failed = client.wait(client.submit("fail", None).id, timeout=30)
    assert failed.state is TaskState.FAILED
    assert failed.error is not None
    assert client.retry(failed.id).state in (TaskState.PENDING, TaskState.RUNNING)
    with pytest.raises(TaskNotFound) as missing:
        client.get("no-such-task")
    assert missing.value.task_id == "no-such-task"
    with pytest.raises(UnknownTaskType) as unknown:
        client.submit("no-such-type")
    assert unknown.value.name == "no-such-type"
    assert "double" in unknown.value.known
    with pytest.raises(InvalidField) as invalid:
        client.submit("echo", priority="urgent")
    assert invalid.value.field == "priority"
    with pytest.raises(InvalidField) as in_batch:
        client.submit_many([Submission("echo"), Submission("echo", timeout=-1)])
    assert (in_batch.value.field, in_batch.value.index) == ("tasks[1].timeout", 1)
    stats = client.stats()
    assert isinstance(stats, oncue.Stats)
    assert stats.cancelled >= 1


def test_sync_wait_raises_timeout_error_when_the_time_is_up(client: Client) -> None:
    sleeping = client.submit("sleep", 60)
    with pytest.raises(TimeoutError, match=rf"task '{sleeping.id}' did not finish within 0.2s"):
        client.wait(sleeping.id, timeout=0.2)
    client.cancel(sleeping.id)


def test_queue_full_carries_retry_after(client: Client) -> None:
    unfinished = client.stats().queue_length + client.stats().running
    held = [client.submit("sleep", 60) for _ in range(QUEUE_SIZE - unfinished)]
    try:
        with pytest.raises(QueueFull) as full:
            client.submit("echo")
        assert full.value.retry_after == 1.0
        assert "queue is full" in str(full.value)
    finally:
        for task in held:
            client.cancel(task.id)


def test_a_missing_token_is_rejected_with_the_servers_reason(server: Server) -> None:
    with Client(server.url) as anonymous, pytest.raises(RequestRejected) as rejected:
        anonymous.stats()
    assert (rejected.value.status, rejected.value.code) == (401, "unauthorized")
    assert server.url in str(rejected.value)


def test_asyncio_program(server: Server) -> None:
    async def main() -> tuple[object, ...]:
        async with AsyncClient(server.url, token=TOKEN) as client:
            tasks = await asyncio.gather(*(client.submit("double", n) for n in range(4)))
            done = await asyncio.gather(*(client.wait(task.id, timeout=30) for task in tasks))
            with pytest.raises(TaskNotFound):
                await client.get("no-such-task")
            page = await client.list(state="completed", limit=1)
            return tuple(task.result for task in done), len(page.tasks)

    assert asyncio.run(main()) == ((0, 2, 4, 6), 1)


async def test_trio_program(server: Server) -> None:
    import trio

    results: dict[int, object] = {}
    async with AsyncClient(server.url, token=TOKEN) as client:

        async def double(n: int) -> None:
            task = await client.submit("double", n)
            results[n] = (await client.wait(task.id, timeout=30)).result

        async with trio.open_nursery() as nursery:
            for n in range(4):
                nursery.start_soon(double, n)
        sleeping = await client.submit("sleep", 60)
        assert (await client.cancel(sleeping.id)).state is TaskState.CANCELLED
        assert (await client.stats()).total_processed >= 4
    assert results == {0: 0, 1: 2, 2: 4, 3: 6}


def test_a_refused_connection_names_the_url() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with Client(url, retries=1) as client, pytest.raises(ServerUnreachable) as unreachable:
        client.stats()
    assert str(unreachable.value).startswith(f"cannot reach oncue at {url}: ")
    assert unreachable.value.url == url
    assert isinstance(unreachable.value, ConnectionError)


@pytest.mark.parametrize("url", ["localhost:8080", "ftp://host/", "http://", "/api/v1"])
def test_a_bad_url_is_refused_at_once(url: str) -> None:
    with pytest.raises(InvalidField, match=f"url must look like http://host:port.*{url!r}"):
        Client(url)


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        ({"timeout": 0}, "timeout", "timeout must be a number of seconds > 0, got 0"),
        ({"retries": -1}, "retries", "retries must be an int >= 0, got -1"),
    ],
)
def test_a_bad_timeout_or_retries_is_named(
    options: dict[str, Any], field: str, message: str
) -> None:
    for make in (Client, AsyncClient):
        with pytest.raises(InvalidField, match=message) as refused:
            make("http://127.0.0.1:8080", **options)
        assert refused.value.field == field


class NotOncue(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # answers HTML, 200 on / and 404 elsewhere
        self.send_response(200 if self.path == "/" else 404)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>hello</html>")

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def not_oncue() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotOncue)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_server_that_is_not_oncue_names_the_url(not_oncue: str) -> None:
    with Client(not_oncue) as client, pytest.raises(NotAnOncueServer) as wrong:
        client.get("some-task")
    assert str(wrong.value).startswith(f"{not_oncue} answered 404 without oncue's JSON error")
    with Client(not_oncue + "/") as client, pytest.raises(NotAnOncueServer, match=not_oncue):
        client.stats()


def refused_url() -> str:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


async def test_the_async_client_pauses_between_retries_under_trio() -> None:
    url = refused_url()
    async with AsyncClient(url, retries=2) as client:
        with pytest.raises(ServerUnreachable, match=f"cannot reach oncue at {url}"):
            await client.get("any")


def test_the_async_client_pauses_between_retries_under_asyncio() -> None:
    url = refused_url()

    async def main() -> None:
        async with AsyncClient(url, retries=2) as client:
            await client.stats()

    with pytest.raises(ServerUnreachable, match=f"cannot reach oncue at {url}"):
        asyncio.run(main())
