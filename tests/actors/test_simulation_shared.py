"""Seeded schedules of several engines sharing one store, faults included, on trio's MockClock.

A failing seed is named in the assertion and replays exactly:
`ONCUE_SIM_SEED=1234 .venv/bin/python -m pytest tests/actors/test_simulation_shared.py`.
`ONCUE_SIM_SHARED_SCHEDULES=5000` runs more (in chunks of CHUNK seeds).
"""

from __future__ import annotations

import os

import pytest
from seeds import chunks, quiet, run_seed, seeds
from simulation import check
from simulation_shared import simulate_shared

SCHEDULES = int(os.environ.get("ONCUE_SIM_SHARED_SCHEDULES", "200"))
CHUNK = 50
__all__ = ["quiet"]  # the fixture, used by name


@pytest.mark.parametrize("first", chunks(SCHEDULES, CHUNK))
def test_seeded_shared_schedules_keep_every_invariant(quiet: None, first: int) -> None:
    for seed in seeds(first, SCHEDULES, CHUNK):
        check(run_seed(simulate_shared, seed))
