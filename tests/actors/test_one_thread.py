"""OneThread: blocking calls run in order on one thread; a cancelled caller abandons its call.

Real threads, no sleeps: the calls wait on threading.Events the tests set.
"""

from __future__ import annotations

import threading

import pytest
import trio

from oncue.actors.backends.one_thread import OneThread


async def test_calls_run_in_order_on_one_thread_and_answer_their_callers() -> None:
    thread = OneThread("test")
    ran: list[tuple[int, int]] = []

    def call(n: int) -> int:
        ran.append((n, threading.get_ident()))
        return n * 2

    assert [await thread.run(call, n) for n in range(5)] == [0, 2, 4, 6, 8]
    assert [n for n, _ in ran] == list(range(5))
    assert len({ident for _, ident in ran} - {threading.get_ident()}) == 1  # one thread, not ours
    thread.stop()


async def test_an_exception_raised_on_the_thread_is_raised_to_the_caller() -> None:
    thread = OneThread("test")

    def fail() -> None:
        raise ValueError("on the thread")

    with pytest.raises(ValueError, match="on the thread"):
        await thread.run(fail)
    assert await thread.run(lambda: "still serving") == "still serving"
    thread.stop()


async def test_concurrent_callers_never_run_two_calls_at_once() -> None:
    thread = OneThread("test")
    inside = 0
    most = 0
    lock = threading.Lock()

    def call(n: int) -> int:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        with lock:
            inside -= 1
        return n

    results: list[int] = []

    async def caller(n: int) -> None:
        results.append(await thread.run(call, n))

    async with trio.open_nursery() as nursery:
        for n in range(20):
            nursery.start_soon(caller, n)
    assert sorted(results) == list(range(20))
    assert most == 1
    thread.stop()


async def test_a_cancelled_caller_leaves_and_its_call_finishes_before_the_next() -> None:
    thread = OneThread("test")
    started, release = threading.Event(), threading.Event()
    order: list[str] = []

    def slow() -> str:
        started.set()
        release.wait()
        order.append("slow")
        return "nobody reads this"

    with trio.move_on_after(5) as scope:  # never reached: cancelled by hand below
        async with trio.open_nursery() as nursery:
            nursery.start_soon(thread.run, slow)
            await trio.to_thread.run_sync(started.wait)
            nursery.cancel_scope.cancel()  # the caller leaves while the call runs
    assert not scope.cancelled_caught
    assert order == []  # still running: abandoned, not interrupted
    release.set()
    assert await thread.run(lambda: order.append("next") or "next") == "next"
    assert order == ["slow", "next"]
    thread.stop()


async def test_a_caller_cancelled_before_its_call_is_queued_never_runs_it() -> None:
    thread = OneThread("test")
    ran: list[str] = []
    with trio.CancelScope() as scope:
        scope.cancel()
        await thread.run(ran.append, "never")
    assert scope.cancelled_caught
    assert ran == []
    assert not thread.running


async def test_a_stopped_thread_ends_and_a_later_call_still_runs() -> None:
    thread = OneThread("test")
    await thread.run(threading.current_thread)
    thread.stop()
    # Served by the old thread if it has not taken the stop yet, else by a new one.
    assert await thread.run(threading.current_thread) is not threading.current_thread()
    assert thread.running
    thread.stop()


async def test_a_thread_ending_idle_never_loses_a_call_nor_runs_two_at_once() -> None:
    # idle=0: the thread ends whenever it finds nothing queued, so calls keep racing its end.
    thread = OneThread("test", idle=0)
    inside: list[int] = []
    ran: list[int] = []

    def call(n: int) -> int:
        inside.append(n)
        assert len(inside) == 1
        ran.append(n)
        inside.remove(n)
        return n

    for n in range(200):
        assert await thread.run(call, n) == n
    assert ran == list(range(200))
    thread.stop()


async def test_a_thread_that_cannot_start_fails_the_call_and_the_next_one_starts_one(
    monkeypatch,
) -> None:
    """No thread left (RuntimeError from start()): that call fails, nothing is left queued
    behind a thread that does not exist, and a later call gets a thread of its own."""
    worker = OneThread("test-start")
    real_start = threading.Thread.start

    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    with pytest.raises(RuntimeError, match="can't start new thread"):
        await worker.run(lambda: 1)
    assert not worker.running
    monkeypatch.setattr(threading.Thread, "start", real_start)
    assert await worker.run(lambda: 2) == 2
    worker.stop()
