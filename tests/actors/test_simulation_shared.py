"""Seeded schedules of several engines sharing one store, faults included, on trio's MockClock.

A failing seed is named in the assertion and replays exactly:
`ONCUE_SIM_SEED=1234 .venv/bin/python -m pytest tests/actors/test_simulation_shared.py`.
`ONCUE_SIM_SHARED_SCHEDULES=5000` runs more (in chunks of CHUNK seeds).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
import trio.testing
from simulation import check
from simulation_shared import simulate_shared

SCHEDULES = int(os.environ.get("ONCUE_SIM_SHARED_SCHEDULES", "200"))
CHUNK = 50
ONLY = os.environ.get("ONCUE_SIM_SEED")


@pytest.fixture
def quiet() -> Iterator[None]:
    """The schedules fail tasks and kill nodes on purpose: log nothing meanwhile."""
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)


@pytest.mark.parametrize("first", [int(ONLY)] if ONLY else range(0, SCHEDULES, CHUNK))
def test_seeded_shared_schedules_keep_every_invariant(quiet: None, first: int) -> None:
    for seed in [first] if ONLY else range(first, min(first + CHUNK, SCHEDULES)):
        clock = trio.testing.MockClock(autojump_threshold=0)
        try:
            run = trio.run(simulate_shared, seed, clock=clock)
        except Exception as error:
            replay = f"replay with ONCUE_SIM_SEED={seed}"
            raise AssertionError(f"seed {seed} crashed; {replay}") from error
        check(run)
