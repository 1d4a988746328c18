"""The garbage collector's young-generation threshold, raised while an engine runs.

Every task allocates a dozen tracked objects (its record, history, job, messages), so with
CPython's default threshold (700) the collector runs every ~60 tasks, and the records that
survive trigger full collections over the whole heap as the store grows. Measured on the
noop-100k workload: ~40 us of collector time per task with the default, ~9 us with 50,000.

The price: cyclic garbage waits longer to be freed (up to ``threshold`` allocations, a few MB),
and each young collection takes longer (milliseconds instead of tens of microseconds), so
pauses are rarer but longer. The setting is process-wide: it is raised when the first engine
starts and restored when the last one stops; ``open_engine(gc_threshold=None)`` leaves it alone.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

GC_THRESHOLD = 50_000  # allocations between young collections while an engine runs

_engines = 0  # engines running in this process that tuned the collector
_saved: tuple[int, int, int] = gc.get_threshold()


@contextmanager
def tuned_gc(threshold: int | None) -> Iterator[None]:
    """Raise the young-generation threshold to at least ``threshold`` for the block (None:
    leave the collector alone); the first engine in saves the settings, the last out restores
    them, unless someone else changed them meanwhile."""
    global _engines, _saved
    if threshold is None:
        yield
        return
    if _engines == 0:
        _saved = gc.get_threshold()
    _engines += 1
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, threshold), middle, old)
    tuned = gc.get_threshold()
    try:
        yield
    finally:
        _engines -= 1
        if _engines == 0 and gc.get_threshold() == tuned:
            gc.set_threshold(*_saved)
