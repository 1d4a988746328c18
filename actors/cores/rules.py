"""The rules a submitted task's fields must follow, defined once.

The engine checks them (admission.py, registry.py, task.py) and the HTTP API declares them in
its request models (http/models.py), so both refuse the same values with the same bounds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidField
from .jsontext import encode as encode_json

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # what a 64-bit database column holds
MAX_KEY_LENGTH = 200
MAX_HEADERS = 32  # a task's headers: how many
MAX_HEADER_NAME = 100
MAX_HEADER_VALUE = 1024
MAX_TYPE_LENGTH = 100
TYPE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}"  # a task type's name, whole
_TYPE_NAME = re.compile(TYPE_PATTERN)


def check_type_name(name: str) -> str:
    """A task type's name: 1-100 letters, digits and _ . : -, starting with a letter or digit."""
    if not isinstance(name, str) or not _TYPE_NAME.fullmatch(name):
        raise InvalidField(
            "type",
            f"task type must be 1-100 characters of letters, digits and _ . : -"
            f" starting with a letter or digit, got {name!r}",
        )
    return name


def check_key(key: str | None) -> str | None:
    """An idempotency key: a string of 1 to MAX_KEY_LENGTH characters, or None."""
    if key is not None and (not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH):
        message = f"key must be a string of 1 to {MAX_KEY_LENGTH} characters, got {key!r}"
        raise InvalidField("key", message)
    return key


def check_headers(headers: Any) -> dict[str, str] | None:
    """A task's headers: at most MAX_HEADERS pairs of strings, names of 1 to MAX_HEADER_NAME
    characters, values of at most MAX_HEADER_VALUE; raises InvalidField naming the problem."""
    if headers is None:
        return None
    if not isinstance(headers, Mapping):
        raise InvalidField("headers", f"headers must be an object of strings, got {headers!r}")
    if len(headers) > MAX_HEADERS:
        message = f"headers may hold at most {MAX_HEADERS} entries, got {len(headers)}"
        raise InvalidField("headers", message)
    for name, value in headers.items():
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_HEADER_NAME:
            message = f"a header name is 1-{MAX_HEADER_NAME} characters, got {name!r}"
            raise InvalidField("headers", message)
        if not isinstance(value, str) or len(value) > MAX_HEADER_VALUE:
            message = f"header {name!r} must be a string of at most {MAX_HEADER_VALUE} characters"
            raise InvalidField("headers", message)
    return dict(headers) or None


def check_int64(field: str, value: int) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise InvalidField(field, f"{field} must fit in 64 bits, got {value!r}")
    return value


def check_one_schedule(delay: object, run_at: object) -> None:
    """A task waits for ``delay`` seconds or until ``run_at``, not both."""
    if delay is not None and run_at is not None:
        raise InvalidField("run_at", "give delay or run_at, not both")


def encode_payload(payload: Any) -> str:
    """The payload as the JSON text a durable store commits; InvalidField if it is not JSON."""
    try:
        return encode_json(payload)
    except (TypeError, ValueError, RecursionError) as error:
        message = f"payload must be a JSON value for a durable store: {error}"
        raise InvalidField("payload", message) from None
