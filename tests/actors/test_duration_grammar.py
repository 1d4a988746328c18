"""The one duration grammar: every reader of a duration accepts the same text."""

from __future__ import annotations

import click
import pytest
from hypothesis import given
from hypothesis import strategies as st

from oncue.actors import Fatal
from oncue.actors.builtins import parse_duration as payload_duration
from oncue.actors.duration_grammar import UNITS, parse_duration
from oncue.http.options import Duration

# The texts the two old parsers disagreed on, and what each means.
AGREED = {
    "90": 90.0,
    "1.5h": 5400.0,
    "500ms": 0.5,
    "2d": 172800.0,
    "15m": 900.0,
    "1h30m": 5400.0,
    " 2 s ": 2.0,
    ".5s": 0.5,
    "7D": 604800.0,
}


@pytest.mark.parametrize(("text", "seconds"), AGREED.items())
def test_every_reader_takes_the_same_text(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)
    assert payload_duration(text) == pytest.approx(seconds)
    assert Duration(forever=True).convert(text, None, None) == pytest.approx(seconds)  # flags


@pytest.mark.parametrize("text", ["", "1y", "h", "-5s", "1.h", "5 m s", "1e3", "nan", "1h-2m"])
def test_bad_text_says_what_a_duration_is(text: str) -> None:
    with pytest.raises(ValueError, match="500ms, 90s"):
        parse_duration(text)
    with pytest.raises(Fatal, match="payload duration"):
        payload_duration(text)
    with pytest.raises(click.BadParameter, match="or forever"):
        Duration(forever=True).convert(text, None, None)


@pytest.mark.parametrize("value", [True, -1, float("nan"), float("inf"), None, [1]])
def test_numbers_are_seconds_but_only_real_lengths_of_time(value: object) -> None:
    with pytest.raises(ValueError, match="a duration is"):
        parse_duration(value)  # type: ignore[arg-type]


@given(
    st.lists(
        st.tuples(st.integers(0, 10_000), st.sampled_from(sorted(UNITS))), min_size=1, max_size=4
    )
)
def test_parts_add_up(parts: list[tuple[int, str]]) -> None:
    text = "".join(f"{number}{unit}" for number, unit in parts)
    expected = sum(number * UNITS[unit] for number, unit in parts)
    assert parse_duration(text) == pytest.approx(expected)
