"""Who owns the tasks a store records: this engine alone, or every engine sharing the backend.

Chosen once, when the store starts (``ownership_for``), and given to the store's core
(store_core.py), which asks it the four things that differ: how a task is numbered, what
admission counts, where a new task goes, and what the store must do besides its own batch
(claims, renewals, reaps, waking waiters of what finished elsewhere). Pure: it decides, the store
actor does the reading and writing it asks for (``AdmissionReads``, ``Chores``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable

import attrs

from ..messages import Claim, Claimed, Job
from .record import TaskRecord

COUNT_EVERY = 1.0  # seconds a shared store's count of unfinished tasks serves admission
CLAIM_WITHIN = 1.0  # a task submitted here due within this many seconds may be kept here


class AdmissionReads:
    """What a shared store must read before it admits: the unfinished count, number blocks."""

    __slots__ = ("at", "count", "creating")

    def __init__(self, count: bool, creating: int, at: float) -> None:
        self.count = count  # read the whole store's unfinished count
        self.creating = creating  # reserve blocks of numbers until this many are at hand
        self.at = at  # when asked (the count's time)


@attrs.define
class Chores:
    """What a shared store does after its batch commits (the store actor runs them)."""

    wake: bool = False  # tell our scheduler that claimable tasks arrived
    renew: bool = False
    reap: bool = False
    claim: Claim | None = None
    recheck: set[str] = attrs.field(factory=set)  # finished elsewhere: maybe waited on here
    recheck_all: bool = False


class LocalOwnership:
    """One engine owns its backend: numbers count up from the last one stored, admission counts
    the unfinished tasks in memory, every new task is this engine's to run."""

    shared = False

    def __init__(self, last_number: int) -> None:
        self._number = last_number

    def admission_reads(self, creating: int) -> AdmissionReads | None:
        return None

    def next_number(self) -> int:
        self._number += 1
        return self._number

    def unfinished_total(self, unfinished: dict[str, TaskRecord]) -> int:
        return len(unfinished)

    def place(self, record: TaskRecord, ready: bool) -> bool:
        """Whether a task created here is ours to run (always)."""
        return True

    def readmit(self, record: TaskRecord, failed_now: bool) -> bool:
        """Whether a failed task retried here is ours to run (always)."""
        return True

    def chores(self) -> Chores | None:
        return None


class SharedOwnership:
    """Several engines ("nodes") share the backend (see backends/base.py, SharedBackend).

    Admission goes by the whole store's unfinished count (refreshed at most every COUNT_EVERY
    seconds: it lags what other engines admitted meanwhile); numbers come from blocks reserved
    in the backend; a task submitted here is ours at once if our scheduler has room left from
    its last claim, else anyone's to claim once committed.
    """

    shared = True

    def __init__(self, node: str, clock: Callable[[], float]) -> None:
        self.node = node
        self._clock = clock  # monotonic seconds (the store gives trio.current_time)
        self.unfinished = 0  # in the whole store, as last counted
        self.created = 0  # admitted here since
        self.counted_at = -math.inf  # trio time of that count
        self.numbers: deque[int] = deque()  # reserved, not yet given
        self.parked = 0  # what our scheduler's last claim asked for and did not get
        self.pending = Chores()

    def admission_reads(self, creating: int) -> AdmissionReads | None:
        """What to read before admitting ``creating`` tasks: the count when it is old, number
        blocks when short; None: nothing."""
        now = self._clock()
        count = now >= self.counted_at + COUNT_EVERY
        if not count and len(self.numbers) >= creating:
            return None
        return AdmissionReads(count, creating, now)

    def counted(self, unfinished: int, now: float) -> None:
        self.unfinished, self.created, self.counted_at = unfinished, 0, now

    def reserved(self, numbers: Iterable[int]) -> None:
        self.numbers.extend(numbers)

    def short_of(self, creating: int) -> bool:
        return len(self.numbers) < creating

    def next_number(self) -> int:
        return self.numbers.popleft()

    def unfinished_total(self, unfinished: dict[str, TaskRecord]) -> int:
        return self.unfinished + self.created

    def place(self, record: TaskRecord, ready: bool) -> bool:
        """Whether a task created here is ours to run now (else anyone's: wake the claimers)."""
        self.created += 1
        due = record.run_at is None or record.run_at <= record.created_at + CLAIM_WITHIN
        if ready and self.parked > 0 and due:
            self.parked -= 1
            record.node = self.node
            return True
        self.pending.wake = True
        return False

    def readmit(self, record: TaskRecord, failed_now: bool) -> bool:
        """A failed task retried here is anyone's to claim, unless it failed here in this
        very batch (``failed_now``): then it is still ours (we hold its lease, and the commit
        keeps it), and ours to run; as anyone's it was held for nobody, its lease renewed for
        ever (found by the shared simulation, seed 714)."""
        self.created += 1
        if failed_now and record.node == self.node:
            return True
        self.pending.wake = True
        return False

    def chores(self) -> Chores | None:
        """What to do after this batch's commit (and forget it: asked again, it is not redone)."""
        chores, self.pending = self.pending, Chores()
        return chores

    # -- what the node actor and the scheduler ask for ----------------------------------------

    def claim(self, message: Claim, tell: Callable[[Claimed], None]) -> None:
        """A claim to run after the batch; limit 0 (paused, draining): keep nothing for us, and
        answer a claim not run yet empty, since the scheduler waits on it."""
        if message.limit > 0:
            self.pending.claim = message
            return
        self.parked = 0
        if self.pending.claim is not None:
            tell(Claimed([], self.pending.claim.limit))
            self.pending.claim = None

    def claimed(self, limit: int, jobs: list[Job]) -> None:
        """What a claim got; the room it left is for what is submitted here."""
        self.parked = limit - len(jobs)

    def renew(self) -> None:
        self.pending.renew = True

    def reap(self) -> None:
        self.pending.reap = True

    def finished_elsewhere(self, ids: tuple[str, ...] | None) -> None:
        if ids is None:
            self.pending.recheck_all = True
        else:
            self.pending.recheck.update(ids)


Ownership = LocalOwnership | SharedOwnership
