"""A supervisor's restart decisions, as plain calls (no trio)."""

from __future__ import annotations

import pytest

from oncue.actors.runtime.restarts import Intensity, restart_group, should_restart
from oncue.actors.runtime.spec import Restart, Strategy


@pytest.mark.parametrize(
    ("restart", "crashed", "expected"),
    [
        (Restart.PERMANENT, False, True),
        (Restart.PERMANENT, True, True),
        (Restart.TRANSIENT, False, False),
        (Restart.TRANSIENT, True, True),
        (Restart.TEMPORARY, False, False),
        (Restart.TEMPORARY, True, False),
    ],
)
def test_whether_a_child_restarts_follows_its_restart_type(restart, crashed, expected) -> None:
    assert should_restart(restart, crashed=crashed) is expected


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        (Strategy.ONE_FOR_ONE, ["b"]),
        (Strategy.ONE_FOR_ALL, ["a", "b", "c"]),
        (Strategy.REST_FOR_ONE, ["b", "c"]),
    ],
)
def test_the_strategy_picks_who_restarts_with_the_failed_child(strategy, expected) -> None:
    assert restart_group(strategy, ["a", "b", "c"], "b") == expected


def test_too_many_restarts_are_counted_within_the_window_only() -> None:
    intensity = Intensity(max_restarts=2, within=5.0)
    assert not intensity.exceeded(0.0)
    assert not intensity.exceeded(1.0)
    assert intensity.exceeded(2.0)  # a third within 5 s
    assert intensity.count == 3
    assert not Intensity(max_restarts=2, within=5.0).exceeded(0.0)
    assert not intensity.exceeded(7.5)  # 0.0, 1.0 and 2.0 have left the window
    assert intensity.count == 1


def test_no_restart_is_allowed_when_max_restarts_is_zero() -> None:
    assert Intensity(max_restarts=0, within=5.0).exceeded(0.0)
