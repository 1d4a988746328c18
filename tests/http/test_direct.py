"""The submit routes answer alike whether the gateway answers them directly or Quart does.

Each configuration (no policy, auth, rate limit, CORS, all three) gets two apps on two fresh
engines: one as served (the gateway answers `POST /api/v1/tasks` and `/batch` itself) and one
whose gateway hands every request to Quart. The same requests go to both; status, headers, body
(task ids and timestamps masked: they differ by nature), the HTTP metrics and the log lines
must be identical.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from conftest import make_registry
from log_lines import log_text
from quart.typing import TestClientProtocol as Client
from quart_trio import QuartTrio

from oncue.actors import Engine, open_engine
from oncue.actors.runtime.mailbox import Mailbox
from oncue.http import routes_submit
from oncue.http.app import Service, create_app
from oncue.http.auth import AuthSettings, parse_api_tokens
from oncue.http.limits import CorsPolicy, RateLimiter
from oncue.http.serve import serve

QUEUE = 12
MAX_BODY = 4096
TOKEN = {"Authorization": "Bearer alice-token"}
ORIGIN = "https://app.example"


def configuration(name: str) -> dict[str, Any]:
    """create_app's policy arguments (fresh objects: a rate limiter keeps state)."""
    auth = AuthSettings(api_tokens=parse_api_tokens("alice:alice-token,ops:ops-token:admin"))
    rate = RateLimiter(rate=1e-6, burst=BURST)
    cors = CorsPolicy.parse(ORIGIN)
    return {
        "none": {},
        "auth": {"auth": auth},
        "rate": {"rate_limit": rate},
        "cors": {"cors": cors},
        "all": {"auth": auth, "rate_limit": rate, "cors": cors},
    }[name]


CONFIGURATIONS = ["none", "auth", "rate", "cors", "all"]


def make_app(engine: Engine, direct: bool, config: str, patch: pytest.MonkeyPatch) -> QuartTrio:
    """The app as served (`direct`), or with a gateway that hands every request to Quart."""
    app = create_app(
        engine, max_body_size=MAX_BODY, batch_limit=5, max_payload_size=100, **configuration(config)
    )
    if direct:  # prove the Quart views are not what answers
        patch.setattr(routes_submit, "request_data", _quart_was_used)
    else:
        app.asgi_app.direct = {}  # type: ignore[attr-defined]
    return app


@asynccontextmanager
async def serving(
    direct: bool, config: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Client, Engine, Service]]:
    """A paused engine (tasks stay pending) and its app's test client."""
    async with open_engine(registry=make_registry(), workers=1, queue_size=QUEUE) as engine:
        await engine.pause()
        with monkeypatch.context() as patch:
            app = make_app(engine, direct, config, patch)
            async with app.test_app() as test_app:
                yield test_app.test_client(), engine, app.extensions["oncue"]


async def _quart_was_used() -> bytes:
    raise AssertionError("a submit went through its Quart view")


def post(path: str, body: bytes | Any, **headers: str) -> dict[str, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return {"method": "POST", "path": path, "data": data, "headers": headers}


ONE, BATCH = "/api/v1/tasks", "/api/v1/tasks/batch"
JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
SCENARIO = [
    post(ONE, {"type": "echo", "payload": 1}, **JSON),
    post(ONE, {"type": "echo", "key": "k1"}, **JSON),
    post(ONE, {"type": "echo", "key": "k1"}, **JSON),  # 200: the task the key names
    post(ONE, {"type": "echo", "payload": [1, {"a": None}]}, **FORM),  # JSON whatever the type
    post(ONE, {"type": "echo"}, **{"Content-Type": "text/plain"}),
    post(ONE, b'{"type": ', **JSON),
    post(ONE, b"", **JSON),
    post(ONE, b"[" * 5000 + b"]" * 5000, **JSON),
    post(ONE, b" " * (MAX_BODY + 1), **JSON),  # 413 body_too_large
    post(ONE, {"type": "echo", "payload": "x" * 200}, **JSON),  # 413 payload_too_large
    post(ONE, {"type": "echo", "priority": 1.5}, **JSON),
    post(ONE, {"type": "nope"}, **JSON),
    post(ONE, {"type": "echo", "colour": "red"}, **JSON),
    post(ONE, {"type": "echo", "delay": 1, "run_at": 2}, **JSON),
    post(ONE, {"type": "echo", "run_at": "not a date"}, **JSON),
    post(ONE, {"type": "echo", "key": "a\x1fb"}, **JSON),
    post(ONE, [1, 2], **JSON),
    post(BATCH, {"tasks": [{"type": "echo"}, {"type": "echo", "payload": 2}]}, **JSON),
    post(BATCH, {"tasks": [{"type": "echo"}, {"type": "echo", "priority": "urgent"}]}, **JSON),
    post(BATCH, {"tasks": [{"type": "echo"}, {"type": "nope"}]}, **JSON),
    post(BATCH, {"tasks": [{"type": "echo"}, {"type": "echo", "payload": "y" * 200}]}, **JSON),
    post(BATCH, {"tasks": [{"type": "echo"}] * 6}, **JSON),
    post(BATCH, {"tasks": []}, **JSON),
    post(BATCH, b"{", **JSON),
    post(ONE + "/", {"type": "echo"}, **JSON),  # not a submit route: Quart's 404 either way
    {"method": "PUT", "path": BATCH, "data": b"", "headers": {}},  # 405
    post(ONE, {"type": "echo"}, Origin=ORIGIN, **JSON),
    post(ONE, {"type": "echo"}, Origin="https://evil.example", **JSON),
    {
        "method": "OPTIONS",
        "path": ONE,
        "data": b"",
        "headers": {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    },
    {
        "method": "OPTIONS",
        "path": BATCH,
        "data": b"",
        "headers": {"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    },
    *[post(BATCH, {"tasks": [{"type": "echo", "payload": n}] * 3}, **JSON) for n in range(3)],
    *[post(ONE, {"type": "echo", "payload": n}, **JSON) for n in range(4)],  # 429 queue_full
    post(ONE, {"type": "echo", "key": "k1"}, **JSON),  # an existing key still answers when full
    *[post(ONE, {"type": "echo"}, Origin=ORIGIN, **JSON) for _ in range(4)],  # 429 rate_limited
]
# The scenario's requests pass the rate limit (its two preflights are not counted) but for
# the last three.
BURST = len(SCENARIO) - 2 - 3
# Without a token (or a bad one) under auth: 401; with auth off the header is ignored.
UNAUTHENTICATED = [
    post(ONE, {"type": "echo"}, **JSON),
    post(BATCH, {"tasks": [{"type": "echo"}]}, Authorization="Bearer wrong", **JSON),
    post(ONE, {"type": "echo"}, Authorization="Basic YWxpY2U6eA==", Origin=ORIGIN),
]

_ID = re.compile(rb'"id":"[0-9a-f]{24}"')
_TIME = re.compile(rb'"\d{4}-\d\d-\d\dT[0-9:.]+Z"')
# what differs between the paths: times, and the file names in a traceback (the last field)
_DURATION = re.compile(r"(time|duration_ms)=\S+| exception=.*")


async def answers(
    client: Client, requests: list[dict[str, Any]], *, token: bool = True
) -> list[Any]:
    """Status, headers and body (ids and times masked) of each request, in order; each carries
    alice's token if `token`."""
    seen = []
    for number, item in enumerate(requests):
        headers = item["headers"] | TOKEN if token else item["headers"]
        response = await client.open(
            item["path"], method=item["method"], data=item["data"], headers=headers
        )
        body = _TIME.sub(b'"TIME"', _ID.sub(b'"id":"ID"', await response.get_data()))
        seen.append((number, response.status_code, list(response.headers.items()), body))
    return seen


def http_metrics(current: Service) -> list[str]:
    """The request counters and the duration counts (the durations themselves vary)."""
    lines = current.metrics.render().decode().splitlines()
    return [
        line
        for line in lines
        if line.startswith("oncue_http_requests_total")
        or line.startswith("oncue_http_request_duration_seconds_count")
    ]


def _blank(match: re.Match[str]) -> str:
    return f"{match[1]}=D" if match[1] else ""


def http_logs(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str]]:
    return [
        (record.name, record.levelname, _DURATION.sub(_blank, log_text([record])))
        for record in caplog.records
        if record.name.startswith("oncue.http")
    ]


Observed = tuple[list[Any], list[str], list[tuple[str, str, str]]]


async def observe(
    direct: bool,
    config: str,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fault: Callable[[Engine], Awaitable[None]] | None = None,
) -> Observed:
    """Answers, HTTP metrics and log lines of the scenario (with `fault`: of a few submits,
    then of the same after the fault)."""
    caplog.clear()
    async with serving(direct, config, monkeypatch) as (client, engine, current):
        if fault is None:
            seen = await answers(client, SCENARIO)
            seen += await answers(client, UNAUTHENTICATED, token=False)
        else:
            seen = await answers(client, SCENARIO[:2])
            await fault(engine)
            seen += await answers(client, [SCENARIO[0], SCENARIO[17]])
        return seen, http_metrics(current), http_logs(caplog)


@pytest.mark.parametrize("config", CONFIGURATIONS)
async def test_submit_routes_answer_alike_on_both_paths(
    config: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="oncue")
    direct = await observe(True, config, monkeypatch, caplog)
    quart = await observe(False, config, monkeypatch, caplog)
    for ours, theirs in zip(direct[0], quart[0], strict=True):
        assert ours == theirs
    assert direct[1:] == quart[1:]
    statuses = {status for _, status, _, _ in direct[0]}
    expected = {200, 201, 400, 404, 405, 413, 422}
    expected |= {401} if config in ("auth", "all") else set()
    expected |= {204, 403} if config in ("cors", "all") else set()
    expected |= {429}
    assert expected <= statuses
    codes = {json.loads(body)["error"]["code"] for _, status, _, body in direct[0] if status == 429}
    limited = config in ("rate", "all")
    assert codes == ({"queue_full", "rate_limited"} if limited else {"queue_full"})
    # Both paths share the policies: check they record at all (an answer counted and logged).
    submitted = 'method="POST",route="/api/v1/tasks",status="201"'
    assert any(submitted in line for line in direct[1]), direct[1]
    logged = "event=http.request method=POST path=/api/v1/tasks status=201"
    assert any(logged in message for _, _, message in direct[2]), direct[2]
    # What the gateway refuses itself is labelled with the route it was meant for.
    refused = {"auth": "401", "rate": "429", "cors": "403", "all": "401"}.get(config)
    if refused is not None:
        label = f'route="{BATCH}",status="{refused}"'
        assert any(label in line for line in direct[1]), direct[1]


async def _shut_down(engine: Engine) -> None:
    await engine.shutdown(grace=0)


async def _break_admission(engine: Engine) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    engine.admit = broken  # type: ignore[method-assign]
    engine.submit_many = broken  # type: ignore[method-assign]


@pytest.mark.parametrize("fault", [_shut_down, _break_admission])
@pytest.mark.parametrize("config", ["none", "all"])
async def test_faults_answer_alike_on_both_paths(
    config: str,
    fault: Callable[[Engine], Awaitable[None]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="oncue")
    direct = await observe(True, config, monkeypatch, caplog, fault)
    quart = await observe(False, config, monkeypatch, caplog, fault)
    assert direct == quart
    assert {status for _, status, _, _ in direct[0][-2:]} == {503 if fault is _shut_down else 500}


async def test_a_stuck_store_is_503_on_both_paths(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = []
    for direct in (True, False):
        async with serving(direct, "none", monkeypatch) as (client, engine, current):
            current.store_deadline = 5.0

            async def stuck(*args: Any, **kwargs: Any) -> Any:
                return await Mailbox("stuck").ref.ask("admit")  # an actor that never answers

            engine.admit = stuck  # type: ignore[method-assign]
            seen.append(await answers(client, SCENARIO[:1]))
    assert seen[0] == seen[1]
    assert seen[0][0][1] == 503


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 1000):
        yield data[start : start + 1000]


async def test_on_the_wire_both_paths_answer_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    """Through Hypercorn on loopback: Content-Length and chunked bodies, a body over the limit
    either way, and the keep-alive connection after each answer."""
    big = b'{"type": "echo", "payload": "' + b"x" * MAX_BODY + b'"}'
    bodies = [b'{"type": "echo", "payload": 1}', b'{"type": "echo", "payload": "yy"}', big, big]
    seen = []
    for direct in (True, False):
        async with open_engine(registry=make_registry(), workers=1) as engine:
            await engine.pause()
            with monkeypatch.context() as patch:
                app = make_app(engine, direct, "all", patch)
                seen.append(await _over_loopback(engine, app, [*bodies, b"{"]))
    assert seen[0] == seen[1]
    assert [status for status, _, _ in seen[0]] == [201, 201, 413, 413, 400]


async def _over_loopback(engine: Engine, app: QuartTrio, bodies: list[bytes]) -> list[Any]:
    """Post each body on one keep-alive connection (the 2nd and 4th chunked)."""
    stop = trio.Event()
    seen = []
    async with trio.open_nursery() as nursery:
        port = await nursery.start(partial(serve, engine, "127.0.0.1", 0, app=app, shutdown=stop))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for number, body in enumerate(bodies):
                content = _chunks(body) if number in (1, 3) else body
                response = await http.post(ONE, content=content, headers=TOKEN | ORIGIN_HEADER)
                headers = [(k, v) for k, v in response.headers.items() if k != "date"]
                masked = _TIME.sub(b'"TIME"', _ID.sub(b'"id":"ID"', response.content))
                seen.append((response.status_code, headers, masked))
        stop.set()
    return seen


ORIGIN_HEADER = {"Origin": ORIGIN}


async def raw_call(app: QuartTrio, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Call the app as Hypercorn's trio worker does: `messages` wait in a memory channel, which
    then stays open and empty. Returns what the app sent."""
    to_app, receive = trio.open_memory_channel[dict[str, Any]](len(messages))
    for message in messages:
        to_app.send_nowait(message)
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": ONE,
        "query_string": b"",
        "root_path": "",
        "headers": [(b"content-type", b"application/json")],
        "client": ("127.0.0.1", 5555),
    }
    await app(scope, receive.receive, send)
    return sent


PART = {"type": "http.request", "body": b'{"type": ', "more_body": True}


@pytest.mark.parametrize("direct", [True, False])
async def test_a_body_that_stalls_is_408_after_the_body_timeout(
    direct: bool, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with open_engine(registry=make_registry(), workers=1) as engine:
        with monkeypatch.context() as patch:
            app = make_app(engine, direct, "none", patch)
            began = trio.current_time()
            sent = await raw_call(app, [PART])
            waited = trio.current_time() - began
            tasks = (await engine.list()).tasks
    assert waited >= app.config["BODY_TIMEOUT"]
    assert sent[0]["status"] == 408
    body = json.loads(b"".join(message.get("body", b"") for message in sent[1:]))
    assert body["error"]["code"] == "http_error"
    assert tasks == []


@pytest.mark.parametrize("direct", [True, False])
async def test_a_client_gone_before_its_body_ends_gets_no_answer_and_no_task(
    direct: bool, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="oncue")
    async with open_engine(registry=make_registry(), workers=1) as engine:
        with monkeypatch.context() as patch:
            app = make_app(engine, direct, "none", patch)
            sent = await raw_call(app, [PART, {"type": "http.disconnect"}])
            tasks = (await engine.list()).tasks
    assert sent == []
    assert tasks == []
    assert not [r for r in caplog.records if r.name == "oncue.http.access"]
