"""JSON text for what the stores keep (payloads, results, errors): one encoder, made once.

``json.dumps(value, separators=(",", ":"))`` builds an encoder per call (~5 us here), and even a
reused JSONEncoder builds its C scanner per call; the C encoder made once costs half of that,
and the plain ints and strings that most payloads are cost nothing. Same output throughout:
compact, ASCII (non-ASCII characters escaped), NaN and infinities as JavaScript writes them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

_encoder = json.JSONEncoder(separators=(",", ":"))
encode_str: Callable[[str], str] = json.encoder.encode_basestring_ascii
decode: Callable[[str], Any] = json.JSONDecoder().decode


def _make_c_encoder() -> Callable[[Any], str] | None:
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # a Python without the _json accelerator
        return None
    # No markers: a circular value raises RecursionError instead of ValueError
    chunks = make(None, _encoder.default, encode_str, None, ":", ",", False, False, True)
    return lambda value: "".join(chunks(value, 0))


encode_any: Callable[[Any], str] = _make_c_encoder() or _encoder.encode


def encode(value: Any) -> str:
    """``value`` as JSON text; raises TypeError, ValueError or RecursionError (circular) for
    a value JSON cannot hold."""
    kind = type(value)
    if kind is int:
        return int.__repr__(value)
    if kind is str:
        return encode_str(value)
    return encode_any(value)


def encode_repr(value: Any) -> str:
    """A value JSON cannot hold, kept as its repr: ``{"__repr__": "..."}``."""
    return _encoder.encode({"__repr__": repr(value)})
