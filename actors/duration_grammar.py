"""The one duration grammar of oncue: `90`, `1.5h`, `500ms`, `2d`, `1h30m`.

A duration is one or more `<number><unit>` parts (the unit may be left out of a single bare
number, which counts seconds). Numbers may have decimals; units are `ms`, `s`, `m`, `h`, `d`.
Every place that reads a duration (CLI flags, `oncue token create --ttl`, the built-in
`sleep`/`process` payloads) goes through `parse_duration`, so they accept the same text.
(durations.py is something else: the scheduler's measured task durations.)
"""

from __future__ import annotations

import re

UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NUMBER = r"\d+(?:\.\d+)?|\.\d+"
_PART = re.compile(rf"({_NUMBER})\s*(ms|s|m|h|d)")
_WHOLE = re.compile(rf"(?:(?:{_NUMBER})\s*(?:ms|s|m|h|d)\s*)+|(?:{_NUMBER})")
GRAMMAR = "a number of seconds or parts like 500ms, 90s, 15m, 1.5h, 2d, 1h30m"


def parse_duration(value: str | float) -> float:
    """Seconds from a number (seconds) or a duration string; raises ValueError otherwise.

    Negative numbers, booleans, NaN and infinity are refused: a duration is a length of time.
    """
    if isinstance(value, bool):
        raise ValueError(f"a duration is {GRAMMAR}, got {value!r}")
    if isinstance(value, int | float):
        if not 0 <= value < float("inf"):
            raise ValueError(f"a duration is {GRAMMAR}, got {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ValueError(f"a duration is {GRAMMAR}, got {value!r}")
    text = value.strip().lower()
    if not _WHOLE.fullmatch(text):
        raise ValueError(f"a duration is {GRAMMAR}, got {value!r}")
    parts = _PART.findall(text)
    if not parts:  # one bare number: seconds
        return float(text)
    return sum(float(number) * UNITS[unit] for number, unit in parts)
