"""Running the engine: the Engine's pause, resume, resize and shutdown (with its drain).

A mixin of the Engine (handle.py), as results.py is: the calls that change how the engine
runs, not its tasks. Shutdown bounds every answer it waits for (ASK_BOUND), so it ends
whatever state the supervision tree is in.
"""

from __future__ import annotations

import logging

import trio

from ..errors import ActorError, StoreUnavailable
from ..messages import CloseAdmission, Drain, LoadQueue, SetPaused, WaitDrained
from ..runtime.mailbox import ActorRef
from ..runtime.tree import SupervisorRef
from ..task import ShutdownReport
from .pool import WorkerPool

logger = logging.getLogger("oncue.actors.engine.handle")

ASK_BOUND = 5.0  # seconds shutdown waits for any one answer from an actor


class Running:
    """Engine methods that pause, resize and stop the engine."""

    _store: ActorRef
    _scheduler: ActorRef
    _workers: SupervisorRef
    _pool: WorkerPool
    _grace: float
    _durable: bool
    _resize_lock: trio.Lock
    _shutdown_started: bool
    _shutdown_done: trio.Event
    _report: ShutdownReport | None

    async def pause(self) -> None:
        """Stop handing out work; submissions are still admitted."""
        await self._scheduler.ask(SetPaused(True))

    async def resume(self) -> None:
        await self._scheduler.ask(SetPaused(False))

    async def resize(self, workers: int) -> None:
        """Grow or shrink the worker pool; a removed worker finishes its task first (grace)."""
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 0:
            raise ValueError(f"workers must be an int >= 0, got {workers!r}")
        async with self._resize_lock:
            children = await self._workers.children()
            numbers = sorted(int(child.name.rsplit("-", 1)[1]) for child in children)
            first_new = max(numbers, default=0) + 1
            for number in range(first_new, first_new + workers - len(numbers)):
                await self._workers.start_child(self._pool.add(number))
            for number in reversed(numbers[workers:]):
                await self._workers.stop_child(f"worker-{number}")
                self._pool.remove(number)
        logger.info("engine.resized", extra={"workers": workers})

    async def shutdown(self, grace: float | None = None) -> ShutdownReport:
        """Stop admitting, let running tasks finish within ``grace``, then interrupt them.

        Interrupted and queued tasks stay unfinished (pending, or retrying with their run_at):
        a durable store resumes them at the next start; the memory store reports them here and
        in the log. Takes at most ``grace`` plus a few seconds, whatever state the tree is in.
        Idempotent: a second call waits for the first and returns the same report.
        """
        if self._shutdown_started:
            await self._shutdown_done.wait()
            assert self._report is not None
            return self._report
        self._shutdown_started = True
        grace = self._grace if grace is None else grace
        interrupted, unfinished = 0, []
        try:
            interrupted = await self._drain(grace)
            with trio.fail_after(ASK_BOUND):
                unfinished = [job.id for job, _ in await self._store.ask(LoadQueue())]
        except (ActorError, StoreUnavailable, trio.TooSlowError) as error:  # failing or stopped
            logger.warning("engine.shutdown_incomplete", extra={"error": repr(error)})
        finally:
            self._report = ShutdownReport(unfinished, interrupted)
            self._shutdown_done.set()
        logger.info(
            "engine.shutdown", extra={"interrupted": interrupted, "unfinished": len(unfinished)}
        )
        if unfinished and not self._durable:
            shown = ",".join(unfinished[:20])
            logger.warning(
                "engine.shutdown_lost",
                extra={"unfinished": len(unfinished), "store": "memory", "ids": shown},
            )
        return self._report

    async def _drain(self, grace: float) -> int:
        """Close admission, stop dispatch, wait ``grace`` for running tasks, then interrupt them;
        return how many were interrupted."""
        with trio.fail_after(ASK_BOUND):
            try:
                await self._store.ask(CloseAdmission())
            except StoreUnavailable as error:  # a backend outage: drain the workers anyway
                logger.warning("engine.shutdown_admission_open", extra={"error": repr(error)})
            await self._scheduler.ask(Drain(interrupt=False))
        with trio.move_on_after(grace) as waited:
            await self._scheduler.ask(WaitDrained())
        if not waited.cancelled_caught:
            return 0
        with trio.fail_after(ASK_BOUND):
            interrupted: int = await self._scheduler.ask(Drain(interrupt=True))
        with trio.move_on_after(ASK_BOUND):
            await self._scheduler.ask(WaitDrained())
        return interrupted
