"""The copies a Redis node keeps of the waiting tasks it wrote whole, for its own claims.

A node that submits a task and then claims it would decode what it wrote moments before. So
the backend (redis.py) keeps a copy of each waiting task it wrote whole, taken as it was
encoded, with the rank, state and ``live`` text written; a claim whose fields still say the
same takes the copy (``fixed`` never changes, and a number is never reused), else decodes.
The oldest are dropped past WRITTEN_KEPT copies or WRITTEN_BYTES of ``fixed`` text (a copy
holds its payload twice: the object and its JSON text). Pure: no I/O.
"""

from __future__ import annotations

from ..cores.record import TaskRecord

WRITTEN_KEPT = 10_000  # copies of the waiting tasks this node wrote, for its claims...
WRITTEN_BYTES = 32 * 2**20  # ...and their ``fixed`` texts' length at most (payloads are in it)


class KeptCopies:
    """id -> (rank, state, live, a copy, the length of its ``fixed`` text), oldest first."""

    def __init__(self) -> None:
        self.copies: dict[str, tuple[str, str, str, TaskRecord, int]] = {}
        self.size = 0  # the sum of those lengths

    def keep(self, waiting: list[tuple[list[str], TaskRecord]], lost: list[str]) -> None:
        """Keep a copy of each of ``waiting`` (its encoded values, and the record as encoded);
        forget those whose write was ``lost``; drop the oldest past the bounds."""
        copies = self.copies
        size = self.size
        for values, record in waiting:
            old = copies.pop(record.id, None)
            if old is not None:
                size -= old[4]
            length = len(values[14])
            copies[record.id] = (values[10], values[2], values[7], record, length)
            size += length
        for task_id in lost:
            gone = copies.pop(task_id, None)
            if gone is not None:
                size -= gone[4]
        while len(copies) > WRITTEN_KEPT or size > WRITTEN_BYTES:
            size -= copies.pop(next(iter(copies)))[4]
        self.size = size

    def take(self, values: list[str]) -> TaskRecord | None:
        """The copy of a claimed task (its FIELDS and rank: ``values``) if its rank, state and
        ``live`` are still what was written, else None (decode it); the copy is let go either
        way."""
        kept = self.copies.pop(values[4][32:], None)
        if kept is None:
            return None
        self.size -= kept[4]
        if kept[0] != values[4] or kept[1] != values[0] or kept[2] != values[3]:
            return None
        record = kept[3]
        record.node = values[1]
        return record
