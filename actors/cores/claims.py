"""When a scheduler on a shared store claims tasks, and how many (pure, no trio).

On a shared store (several engines on one backend) the scheduler's queues are a buffer of the
tasks this engine claimed. It claims when the buffer is half empty, filling it to the prefetch
(claimed tasks per worker, sized by durations.py, times the workers): at once after a notice
that tasks are waiting (Wake) or a claim that came back full, else every CLAIM_POLL seconds.
One claim is out at a time.
"""

from __future__ import annotations

import math

import attrs

CLAIM_POLL = 1.0  # seconds between claims of an engine with room (notices: sooner)


@attrs.define
class Claims:
    """The claim timer and the one claim in flight; inert unless ``shared``."""

    shared: bool
    claiming: bool = False  # a Claim is out; its Claimed has not come back
    claim_now: bool = True  # a notice (or a full claim) says more may be waiting
    claim_at: float = -math.inf  # the next poll (the scheduler's clock)

    def room(self, prefetch: int, buffered: int, *, accepting: bool) -> int:
        """How many tasks to claim: none until the buffer (``buffered`` tasks queued or held,
        of ``prefetch``) is half empty, then enough to fill it; none while not ``accepting``
        (paused or draining) or while a claim is out."""
        if not self.shared or self.claiming or not accepting:
            return 0
        room = prefetch - buffered
        return room if room > 0 and 2 * room >= prefetch else 0

    def next_claim(self, room: int) -> float:
        """When the next claim is due, given the ``room`` there is now."""
        if not room:
            return math.inf
        return -math.inf if self.claim_now else self.claim_at

    def due(self, room: int, now: float) -> int:
        """How many to claim at ``now`` (0: none yet). A claim sent arms the next poll; the
        caller sends ``Claim(limit)`` and says :meth:`undelivered` if it could not."""
        if not room or (now < self.claim_at and not self.claim_now):
            return 0
        self.claiming = True
        self.claim_now = False
        self.claim_at = now + CLAIM_POLL
        return room

    def undelivered(self) -> None:
        """The claim could not be sent (the store is busy): the next poll tries again."""
        self.claiming = False

    def answered(self, got: int, limit: int) -> None:
        """The store claimed ``got`` of ``limit``: a full claim says more may be waiting."""
        self.claiming = False
        self.claim_now = self.claim_now or got >= limit

    def wake(self) -> None:
        """Claimable tasks may be waiting (a notice, or a submit here): claim at once."""
        self.claim_now = True
