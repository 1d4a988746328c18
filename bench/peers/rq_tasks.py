"""RQ job functions for the bench (importable by the worker: it runs from the repo root)."""

from __future__ import annotations

import time
from typing import Any


def double(x: int) -> list[Any]:
    return [2 * x, time.time()]


def nap(x: int) -> list[Any]:
    started = time.time()
    time.sleep(0.01)
    return [x, started]
