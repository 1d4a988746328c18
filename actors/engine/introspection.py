"""The engine's local introspection: :meth:`Engine.statistics` and what it returns.

trio's convention: ``statistics()`` is synchronous and answers from what this process holds
right now (no message to any actor, so it works while the store is busy or restarting). For
counts of tasks ask the store: ``await engine.stats()``.
"""

from __future__ import annotations

import attrs

from ..runtime.mailbox import MailboxStatistics


@attrs.frozen
class EngineStatistics:
    """A snapshot of one engine's own plumbing, from :meth:`Engine.statistics`."""

    node: str | None  # this engine's name on a shared store (None: not shared)
    durable: bool  # tasks outlive the process
    closing: bool  # shutdown began: no new task is admitted
    workers: int  # the worker pool's size (resize changes it)
    nowait_pending: int  # tasks given to submit_nowait that the store has not taken yet
    store: MailboxStatistics  # the store actor's mailbox
    scheduler: MailboxStatistics  # the scheduler actor's mailbox
