"""The dashboard's browser tests: a real server in a thread, Debian's Chromium driven headless by
Playwright. No browser is ever downloaded: without /usr/bin/chromium (`apt-get install
chromium`, which .ci/test.sh does) these tests skip, and under CI=true they fail instead.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio

from oncue.actors import Engine, Fatal, Registry, TaskContext, open_engine, register_builtins
from oncue.http.app import create_app
from oncue.http.auth import AuthSettings, parse_api_tokens
from oncue.http.serve import serve

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).parent / "screenshots"
BOUND = 30.0  # seconds: a safety bound on every wait, never a timing assertion


def chromium_or_skip() -> None:
    """Skip unless Playwright and Debian's Chromium are here; under CI=true, fail instead."""
    reason = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError as error:
        reason = f"dashboard browser tests need playwright (pip install -e '.[test]'): {error}"
    if reason is None and not CHROMIUM.exists():
        reason = f"dashboard browser tests need Debian's chromium at {CHROMIUM}"
        reason += " (apt-get install chromium; .ci/test.sh does)"
    if reason is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


def make_registry() -> Registry:
    """The built-ins plus `hold` (runs until cancelled) and `crash` (fails with a traceback)."""
    registry = register_builtins(Registry())

    @registry.task("hold", timeout=3600, max_retries=0)
    async def hold(ctx: TaskContext, payload: Any) -> Any:
        await trio.sleep_forever()

    @registry.task("crash", max_retries=0)
    async def crash(ctx: TaskContext, payload: Any) -> Any:
        raise Fatal(f"crashed on purpose with {payload!r}")

    return registry


@attrs.define
class Server:
    """A served engine in a thread of its own: its URL, and how to stop it."""

    url: str
    token: trio.lowlevel.TrioToken
    stop: trio.Event
    thread: threading.Thread

    def close(self) -> None:
        self.token.run_sync_soon(self.stop.set)
        self.thread.join(timeout=BOUND)


def start_server(auth: AuthSettings | None = None) -> Server:
    ready: queue.Queue[tuple[int, trio.lowlevel.TrioToken, trio.Event]] = queue.Queue()

    async def main() -> None:
        async with open_engine(registry=make_registry(), workers=2, grace=0) as engine:
            await _serve(engine, auth, ready)

    thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
    thread.start()
    port, token, stop = ready.get(timeout=BOUND)
    return Server(f"http://127.0.0.1:{port}", token, stop, thread)


async def _serve(engine: Engine, auth: AuthSettings | None, ready: queue.Queue[Any]) -> None:
    stop = trio.Event()
    app = create_app(engine, auth=auth)
    async with trio.open_nursery() as nursery:
        port = await nursery.start(
            partial(serve, engine, "127.0.0.1", 0, app=app, shutdown=stop, graceful_timeout=1)
        )
        ready.put((port, trio.lowlevel.current_trio_token(), stop))


@pytest.fixture
def server() -> Iterator[Server]:
    chromium_or_skip()
    running = start_server()
    yield running
    running.close()


@pytest.fixture
def auth_server() -> Iterator[Server]:
    chromium_or_skip()
    tokens = parse_api_tokens("alice:token-a,root:token-root:admin")
    running = start_server(AuthSettings(api_tokens=tokens))
    yield running
    running.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"]
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page; its console errors and page errors are collected in `page.errors`."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.errors = []  # type: ignore[attr-defined]
    page.on("console", lambda message: message.type == "error" and page.errors.append(message.text))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.set_default_timeout(BOUND * 1000)
    yield page
    context.close()
