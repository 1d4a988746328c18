"""`oncue worker`: the engine without HTTP, on a shared store; SIGTERM drains it."""

from __future__ import annotations

import argparse
import logging
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
import trio.testing
from log_lines import log_text

import oncue.http.worker_node
from oncue.actors import Registry, TaskContext, open_engine, register_builtins
from oncue.actors.backends.memory import MemoryBackend
from oncue.http.cli import main, parse_options
from oncue.http.options import engine_options
from oncue.http.process import redact
from oncue.http.worker_node import NOT_SHARED, work

STORE_VARIABLES = ("ONCUE_STORE", "DATABASE_URL", "REDIS_URL", "ONCUE_LEASE", "ONCUE_WORKERS")
SHARED = "postgresql://oncue:secret@db.example/tasks"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch) -> None:
    for name in STORE_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("store", ["memory://", "sqlite:///oncue.db", "sqlite:////tmp/x.db"])
def test_a_store_of_one_process_is_refused_in_one_line(store, capsys) -> None:
    with pytest.raises(SystemExit) as refused:
        main(["worker", "--store", store])
    assert refused.value.code == NOT_SHARED
    assert NOT_SHARED.startswith("oncue worker needs a shared store (postgresql://")
    assert capsys.readouterr().out == ""


def test_without_a_store_the_default_sqlite_is_refused_too() -> None:
    with pytest.raises(SystemExit) as refused:
        main(["worker"])
    assert refused.value.code == NOT_SHARED


def test_worker_options_and_their_environment(monkeypatch) -> None:
    options = parse_options(["worker", "--store", SHARED])
    assert (options.lease, options.workers, options.grace) == (30.0, 5, 10.0)
    assert (options.log_level, options.log_format, options.handlers) == ("info", "text", None)
    monkeypatch.setenv("DATABASE_URL", SHARED)
    monkeypatch.setenv("ONCUE_LEASE", "12.5")
    monkeypatch.setenv("WORKER_COUNT", "3")
    options = parse_options(["worker", "--grace", "2", "--handlers", "app.tasks"])
    assert (options.store, options.lease, options.workers) == (SHARED, 12.5, 3)
    assert (options.grace, options.handlers) == (2.0, "app.tasks")
    assert parse_options(["worker", "--lease", "5"]).lease == 5.0


def test_serve_takes_lease_too_and_leaves_it_to_the_engine_by_default(monkeypatch) -> None:
    assert parse_options(["serve"]).lease is None
    assert parse_options(["serve", "--lease", "9"]).lease == 9.0
    monkeypatch.setenv("ONCUE_LEASE", "7")
    assert parse_options(["serve"]).lease == 7.0


@pytest.mark.parametrize("command", ["worker", "serve"])
def test_a_node_may_be_named(command, monkeypatch) -> None:
    assert engine_options(parse_options([command, "--node", "n1"]))["node"] == "n1"
    monkeypatch.setenv("ONCUE_NODE", "n2")
    assert engine_options(parse_options([command]))["node"] == "n2"
    monkeypatch.delenv("ONCUE_NODE")
    assert "node" not in engine_options(parse_options([command]))


@pytest.mark.parametrize("command", ["worker", "serve"])
def test_a_lease_must_be_positive(command, capsys) -> None:
    assert main([command, "--store", SHARED, "--lease", "0"]) == 2
    refusal = "Invalid value for '--lease': a duration > 0 is needed here, got '0'"
    assert refusal in capsys.readouterr().err


def test_a_worker_has_no_http_options(capsys) -> None:
    assert main(["worker", "--port", "8080"]) == 2
    assert "No such option '--port'" in capsys.readouterr().err


async def test_work_runs_tasks_until_a_signal_then_drains(
    autojump_clock, monkeypatch, caplog
) -> None:
    leases = record_lease(monkeypatch)
    options = worker_options("--workers", "2", "--grace", "1")
    options.store = MemoryBackend()  # the test's own store: no shared database needed
    signals_in, signals = trio.open_memory_channel[int](1)
    caplog.set_level(logging.INFO)
    exit_codes: list[int] = []
    async with trio.open_nursery() as nursery:
        engine = await nursery.start(work_reporting, options, signals, exit_codes)
        task = await engine.submit("double", 21)
        assert (await engine.wait(task.id)).result == 42
        await signals_in.send(15)  # SIGTERM
    assert exit_codes == [0]
    assert leases == [30.0]
    log = log_text(caplog.records)
    assert "event=worker.started node=" in log
    assert f'store="{options.store}" workers=2 lease=30.0' in log
    assert "event=worker.signal signal=SIGTERM action=drain" in log
    assert "event=worker.drained unfinished=0 interrupted=0" in log
    assert "event=worker.stopped" in log


async def test_a_signal_while_a_task_runs_interrupts_it_after_the_grace(
    autojump_clock, monkeypatch, caplog
) -> None:
    record_lease(monkeypatch)
    options = worker_options("--workers", "1", "--grace", "5")
    options.store = MemoryBackend()
    signals_in, signals = trio.open_memory_channel[int](1)
    caplog.set_level(logging.INFO)
    registry = register_builtins(Registry())

    @registry.task("block", max_retries=0)
    async def block(ctx: TaskContext, payload: Any) -> None:
        await trio.sleep_forever()

    exit_codes: list[int] = []
    async with trio.open_nursery() as nursery:
        engine = await nursery.start(work_reporting, options, signals, exit_codes, registry)
        await engine.submit("block", None)
        await trio.testing.wait_all_tasks_blocked()
        started = trio.current_time()
        await signals_in.send(2)  # SIGINT
    assert exit_codes == [0]
    assert trio.current_time() - started >= 5  # the grace, on the mock clock
    assert "event=worker.drained unfinished=1 interrupted=1" in log_text(caplog.records)


async def work_reporting(
    options: argparse.Namespace,
    signals: Any,
    exit_codes: list[int],
    registry: Any = None,
    *,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED,
) -> None:
    """`work`, reporting its engine to the test and its exit code in `exit_codes`."""
    registry = registry if registry is not None else register_builtins(Registry())
    exit_codes.append(await work(options, registry, signals, task_status=task_status))


def worker_options(*flags: str) -> argparse.Namespace:
    return parse_options(["worker", "--store", SHARED, *flags])


def record_lease(monkeypatch) -> list[float]:
    """Record the lease `open_engine` is given."""
    leases: list[float] = []

    @asynccontextmanager
    async def open_engine_with_lease(*, lease: float, **keywords: Any):
        leases.append(lease)
        async with open_engine(lease=lease, **keywords) as engine:
            yield engine

    monkeypatch.setattr(oncue.http.worker_node, "open_engine", open_engine_with_lease)
    return leases


def test_the_store_is_logged_without_its_password() -> None:
    assert redact(SHARED) == "postgresql://oncue:***@db.example/tasks"
    assert redact("postgresql://u:p@h:5432/db?x=1") == "postgresql://u:***@h:5432/db?x=1"
    assert redact("redis://localhost:6379/0") == "redis://localhost:6379/0"


async def test_a_signal_caught_before_trio_listened_drains_at_once(
    autojump_clock, monkeypatch, caplog
) -> None:
    record_lease(monkeypatch)
    options = worker_options()
    options.store = MemoryBackend()
    options.early_signals = [15]  # what the console script caught while Python imported
    _, signals = trio.open_memory_channel[int](1)
    caplog.set_level(logging.INFO)
    assert await work(options, register_builtins(Registry()), signals) == 0
    assert "event=worker.signal signal=SIGTERM action=drain" in log_text(caplog.records)
    assert "event=worker.stopped" in log_text(caplog.records)
