"""One thread that runs blocking calls in order for trio (the SQLite connection's).

``trio.to_thread.run_sync`` with a CapacityLimiter of 1 did this before, at a price a producer
awaiting each ``submit()`` paid on every commit: the limiter's checkpoint (one more pass of the
run loop before the thread is even woken), a context copy, a thread taken from trio's cache.
Here calls queue for the one thread, which hands each outcome back through the run's
``TrioToken``. It starts with the first call and ends after IDLE seconds without one, or at
:meth:`OneThread.stop` (a daemon: a process that exits without stopping it does not wait).

A call whose caller is cancelled is abandoned, as ``to_thread.run_sync(abandon_on_cancel=True)``
abandons it: the caller leaves at once; the thread finishes the call (a commit past its deadline
still commits, or not) and drops its outcome; the calls queued behind it wait for it, so the
thread never runs two at a time. A call cancelled before it is queued never runs.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import attrs
import outcome
import trio

T = TypeVar("T")
IDLE = 10.0  # seconds without a call before the thread ends (the next call starts another)


@attrs.define(eq=False)
class _Call:
    """One call for the thread, and who waits for its outcome (None once abandoned)."""

    function: Callable[..., Any]
    args: tuple[Any, ...]
    token: trio.lowlevel.TrioToken
    waiter: trio.lowlevel.Task | None


class OneThread:
    """Runs ``run()``'s calls one at a time, in order, on a thread of its own."""

    def __init__(self, name: str, idle: float = IDLE) -> None:
        self._name = name
        self._idle = idle
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        # Under the lock: a call queued, a thread started, the thread ending. One at most is
        # alive: a thread ends only with nothing queued, and a call starts one only if none is.
        self._lock = threading.Lock()
        self._alive = False

    @property
    def running(self) -> bool:
        """A thread is alive to serve the calls."""
        return self._alive

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` on the thread; its result, or its exception re-raised here."""
        await trio.lowlevel.checkpoint_if_cancelled()
        call = _Call(function, args, trio.lowlevel.current_trio_token(), None)
        call.waiter = trio.lowlevel.current_task()
        with self._lock:
            if not self._alive:  # started first: if no thread can start, nothing is queued
                threading.Thread(target=self._serve, name=self._name, daemon=True).start()
                self._alive = True
            self._calls.put(call)

        def abandon(_: Any) -> trio.lowlevel.Abort:
            call.waiter = None  # the thread drops the outcome
            return trio.lowlevel.Abort.SUCCEEDED

        result: T = await trio.lowlevel.wait_task_rescheduled(abandon)  # unwrapped already
        return result

    def stop(self) -> None:
        """Let the thread end once what is queued has run (no waiting here); a call queued
        after this keeps it serving."""
        with self._lock:
            if self._alive:
                self._calls.put(None)

    def _serve(self) -> None:
        while (call := self._next()) is not None:
            result = outcome.capture(call.function, *call.args)
            with contextlib.suppress(trio.RunFinishedError):  # the run is over: nobody waits
                call.token.run_sync_soon(_deliver, call, result)

    def _next(self) -> _Call | None:
        """The next call, or None when this thread ends: stopped or idle, nothing queued."""
        while True:
            try:
                call = self._calls.get(timeout=self._idle)
            except queue.Empty:
                call = None
            if call is not None:
                return call
            with self._lock:
                if self._calls.empty():
                    self._alive = False
                    return None


def _deliver(call: _Call, result: outcome.Outcome[Any]) -> None:
    """In the trio thread: wake the caller with the outcome, unless it left meanwhile."""
    if call.waiter is not None:
        trio.lowlevel.reschedule(call.waiter, result)
        call.waiter = None
