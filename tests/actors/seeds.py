"""Running seeded schedules (test_simulation.py, test_simulation_shared.py): which seeds a test
case takes, a run on a fresh MockClock, one seed replayed with ``ONCUE_SIM_SEED``."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

import pytest
import trio
import trio.testing

ONLY = os.environ.get("ONCUE_SIM_SEED")  # replay this one seed


def chunks(schedules: int, chunk: int) -> Iterable[int]:
    """The first seed of each test case: ``chunk`` seeds a case, or only the one replayed."""
    return [int(ONLY)] if ONLY else range(0, schedules, chunk)


def seeds(first: int, schedules: int, chunk: int) -> Iterable[int]:
    """The seeds of the case starting at ``first``."""
    return [first] if ONLY else range(first, min(first + chunk, schedules))


def run_seed(simulation: Callable[[int], Awaitable[Any]], seed: int) -> Any:
    """One schedule on a fresh MockClock (nothing carries over from the one before); a crash
    of the simulation itself names the seed to replay."""
    clock = trio.testing.MockClock(autojump_threshold=0)
    try:
        return trio.run(simulation, seed, clock=clock)
    except Exception as error:
        raise AssertionError(f"seed {seed} crashed; replay with ONCUE_SIM_SEED={seed}") from error


@pytest.fixture
def quiet() -> Iterator[None]:
    """The schedules fail tasks (and kill nodes) on purpose by the thousand: log nothing."""
    logging.disable(logging.CRITICAL)
    yield
    logging.disable(logging.NOTSET)
