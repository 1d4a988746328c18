"""Start-up that speaks in one line: a port in use, a store that does not answer (yet), a
schema newer than this oncue; and a signal while waiting for the store ends cleanly."""

from __future__ import annotations

import itertools
import logging
import socket
import sqlite3
from pathlib import Path

import pytest
import trio
from log_lines import log_text

from oncue.actors.backends.sqlite_sql import MIGRATIONS
from oncue.http import startup
from oncue.http.cli import main
from oncue.http.startup import StartupError, backoff, wait_for_store


def newer_sqlite(path: Path) -> str:
    """A SQLite store whose schema a later oncue wrote."""
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    connection.execute("INSERT INTO schema_version VALUES (99)")
    connection.commit()
    connection.close()
    return f"sqlite:///{path}"


def one_line(stderr: str) -> str:
    """The single `oncue:` line of `stderr`, which has no traceback."""
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("oncue:")]
    assert len(lines) == 1, stderr
    return lines[0]


def fails_then_opens(monkeypatch: pytest.MonkeyPatch, failures: int) -> list[float]:
    """Make opening the store fail `failures` times (a refused connection); returns the trio
    times of the attempts."""
    attempts: list[float] = []

    async def open_once(url: str) -> None:
        attempts.append(trio.current_time())
        if len(attempts) <= failures:
            raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(startup, "_open_once", open_once)
    return attempts


async def never_signalled() -> trio.MemoryReceiveChannel[int]:
    return trio.open_memory_channel[int](1)[1]


async def test_an_unreachable_store_is_retried_with_backoff_then_opens(
    autojump_clock, monkeypatch, caplog
) -> None:
    attempts = fails_then_opens(monkeypatch, failures=3)
    with caplog.at_level(logging.WARNING, "oncue.startup"):
        assert await wait_for_store("postgresql://db/x", 30, await never_signalled()) is True
    gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
    assert gaps == [backoff(1), backoff(2), backoff(3)] == [0.5, 1.0, 2.0]
    lines = log_text(caplog.records).splitlines()
    assert len(lines) == 3
    assert "event=store.unreachable store=postgresql://db/x attempt=1" in lines[0]


async def test_an_unreachable_store_gives_up_after_store_wait_in_one_line(
    autojump_clock, monkeypatch, caplog
) -> None:
    attempts = fails_then_opens(monkeypatch, failures=1000)
    with (
        caplog.at_level(logging.WARNING, "oncue.startup"),
        pytest.raises(StartupError) as raised,
    ):
        await wait_for_store("redis://db:6379/0", 30, await never_signalled())
    assert trio.current_time() == pytest.approx(30)
    message = str(raised.value)
    assert message.startswith(f"store redis://db:6379/0 did not answer in 30s ({len(attempts)} ")
    assert "--store-wait" in message
    assert "\n" not in message
    assert len(caplog.records) == len(attempts) - 1  # one line an attempt, the last one raises


async def test_a_signal_while_waiting_for_the_store_ends_cleanly(
    autojump_clock, monkeypatch
) -> None:
    attempts = fails_then_opens(monkeypatch, failures=1000)
    send, signals = trio.open_memory_channel[int](1)
    async with trio.open_nursery() as nursery:

        async def signal_later() -> None:
            await trio.sleep(5)
            await send.send(15)

        nursery.start_soon(signal_later)
        assert await wait_for_store("postgresql://db/x", 30, signals) is False
    assert trio.current_time() == pytest.approx(5)
    assert len(attempts) >= 2
    assert await wait_for_store("postgresql://db/x", 30, await never_signalled(), [2]) is False


async def test_a_schema_newer_than_this_oncue_is_said_once_without_retrying(tmp_path) -> None:
    with pytest.raises(StartupError, match="schema version 99 is newer than this oncue"):
        await wait_for_store(newer_sqlite(tmp_path / "new.db"), 30, await never_signalled())


def test_serve_on_a_port_in_use_says_so_in_one_line_and_exits_1(capsys) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", "--port", str(port), "--store", "memory://"])
    assert code == 1
    line = one_line(capsys.readouterr().err)
    assert line == f"oncue: cannot listen on 127.0.0.1:{port}: Address already in use"


def test_serve_on_a_newer_schema_says_it_once_and_exits_1(tmp_path, capsys) -> None:
    store = newer_sqlite(tmp_path / "new.db")
    assert main(["serve", "--port", "0", "--store", store]) == 1
    line = one_line(capsys.readouterr().err)
    known = len(MIGRATIONS)
    assert line.endswith(
        f"database schema version 99 is newer than this oncue knows ({known}); upgrade oncue"
    )


def test_worker_on_an_unreachable_postgres_exits_1_in_one_line(capsys) -> None:
    pytest.importorskip("psycopg")
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    store = f"postgresql://127.0.0.1:{port}/test"
    assert main(["worker", "--store", store, "--store-wait", "0"]) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"oncue: store {store} did not answer in 0s (1 attempts)")


async def test_a_server_that_refuses_us_is_said_at_once_one_that_starts_is_waited_for(
    autojump_clock, monkeypatch
) -> None:
    refusal = 'failed: FATAL:  password authentication failed for user "me"'
    starting = "failed: FATAL:  the database system is starting up"
    errors = [ConnectionError(starting), ConnectionError(refusal)]

    async def open_once(url: str) -> None:
        raise errors.pop(0)

    monkeypatch.setattr(startup, "_open_once", open_once)
    with pytest.raises(StartupError, match="password authentication failed") as raised:
        await wait_for_store("postgresql://me@db/x", 30, await never_signalled())
    assert "did not answer" not in str(raised.value)
    assert errors == []  # the first was retried


@pytest.mark.parametrize("kind", ["not a database", "under a file"])
async def test_a_sqlite_file_that_cannot_open_is_said_at_once(monkeypatch, tmp_path, kind) -> None:
    """A local file does not come up by waiting: no retries for --store-wait seconds (a tiny
    wait here, so that the unfixed code fails at once, saying it "did not answer")."""
    (tmp_path / "file").write_text("not a database\n")
    url = (
        f"sqlite:///{tmp_path / 'file'}"
        if kind == "not a database"
        else (f"sqlite:///{tmp_path / 'file' / 'oncue.db'}")
    )
    attempts: list[str] = []
    open_once = startup._open_once

    async def counted(url: str) -> None:
        attempts.append(url)
        await open_once(url)

    monkeypatch.setattr(startup, "_open_once", counted)
    with pytest.raises(StartupError, match="file") as raised:
        await wait_for_store(url, 0.001, await never_signalled())
    assert "did not answer" not in str(raised.value)
    assert attempts == [url]
