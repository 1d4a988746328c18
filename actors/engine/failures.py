"""What an attempt that did not return becomes: the Outcome a worker reports, logged once.

One job: judge how an attempt ended badly and turn that into data. ``failed``: task code raised
(a JobFailed, with the traceback kept for what the code did not expect); ``cut_short``: the
worker's cancel scope fired (a timeout, an interrupt, a cancel); ``raised_by_task_code``:
whether a BaseException out of a handler is the task's own failure or trio's cancellation
going on. The worker (worker.py) calls these at its task boundary.
"""

from __future__ import annotations

import logging
import time
import traceback

import trio

from ..errors import TaskTimeout
from ..messages import Job, JobCancelled, JobFailed, JobInterrupted, JobTimedOut, Outcome
from ..task import TaskError

logger = logging.getLogger(__name__)


def failed(
    job: Job,
    worker: str,
    started: float,
    error: BaseException,
    *,
    fatal: bool = False,
    retry_delay: float | None = None,
    expected: bool = False,
) -> JobFailed:
    """Task code raised ``error`` in the attempt ``worker`` started at ``started``."""
    logger.warning(
        "task.error",
        extra={
            "task_id": job.id,
            "task_type": job.type,
            "worker": worker,
            "attempt": job.attempts + 1,
            "error": repr(error),
        },
        # the full traceback for what task code did not expect (not Retry, not Fatal)
        exc_info=None if fatal or expected else error,
    )
    details = TaskError.from_exception(error, "".join(traceback.format_exception(error)))
    return JobFailed(job, started, time.time(), details, fatal, retry_delay)


def cut_short(job: Job, worker: str, interrupt: str | None) -> Outcome:
    """The worker's scope fired while ``job`` ran: ``interrupt`` says why (None: its timeout)."""
    now = time.time()
    if interrupt == "cancelled":
        return JobCancelled(job, now)
    if interrupt is not None:
        return JobInterrupted(job, now)
    logger.warning(
        "task.timeout",
        extra={"task_id": job.id, "task_type": job.type, "worker": worker},
    )
    error = TaskError.from_exception(TaskTimeout(job.timeout))
    return JobTimedOut(job, now, error)


def raised_by_task_code(error: BaseException) -> bool:
    """Whether a BaseException out of a handler is the task's own failure (issue 12 item 8).

    Not so for trio's Cancelled (a timeout, an interrupt, the engine stopping) nor for a
    KeyboardInterrupt trio delivered from a SIGINT to the process (its traceback ends in trio's
    signal handler): those go on and stop what they are meant to. Anything else task code
    raises (SystemExit, GeneratorExit, KeyboardInterrupt raised by the code itself, custom
    BaseExceptions) fails the task like any error, so no task can take its node down.
    """
    if isinstance(error, BaseExceptionGroup):
        return all(raised_by_task_code(inner) for inner in error.exceptions)
    if isinstance(error, trio.Cancelled):
        return False
    if isinstance(error, KeyboardInterrupt):
        return not _delivered_by_trio(error)
    return True


def _delivered_by_trio(error: BaseException) -> bool:
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    return frame is not None and frame.tb_frame.f_globals.get("__name__", "").startswith("trio.")
