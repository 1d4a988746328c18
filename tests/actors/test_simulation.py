"""Thousands of seeded schedules of the whole engine, faults included, on trio's MockClock.

A failing seed is named in the assertion and replays exactly:
`ONCUE_SIM_SEED=1234 .venv/bin/python -m pytest tests/actors/test_simulation.py`.
`ONCUE_SIM_SCHEDULES=20000` runs more (in chunks of CHUNK seeds).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
import trio.testing
from simulation import check, simulate

SCHEDULES = int(os.environ.get("ONCUE_SIM_SCHEDULES", "1000"))
CHUNK = 100
ONLY = os.environ.get("ONCUE_SIM_SEED")


@pytest.fixture
def quiet() -> Iterator[None]:
    """The schedules fail tasks on purpose by the thousand: log nothing meanwhile."""
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


@pytest.mark.parametrize("first", [int(ONLY)] if ONLY else range(0, SCHEDULES, CHUNK))
def test_seeded_schedules_keep_every_invariant(quiet: None, first: int) -> None:
    for seed in [first] if ONLY else range(first, min(first + CHUNK, SCHEDULES)):
        # a fresh run and clock per seed: nothing carries over from the schedule before
        clock = trio.testing.MockClock(autojump_threshold=0)
        run = trio.run(simulate, seed, clock=clock)
        check(run)
