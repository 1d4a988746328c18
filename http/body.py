"""Reading request bodies and query strings into models.

Bodies are decoded and validated in one msgspec pass, whatever the Content-Type (curl's `-d`
sends form encoding by default): malformed JSON is a 400, a body that does not fit the model
is a 422 naming the field.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from quart import request

from .errors import ApiError

T = TypeVar("T")

_FIELD_AT = re.compile(r"at `\$\.?([^`]*)`")
_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]+)`")

_decoders: dict[type[Any], msgspec.json.Decoder[Any]] = {}

# The deepest nesting of arrays and objects a request body may have. A fixed bound, so the
# answer does not depend on how deep the server's own stack happens to be when it encodes
# the payload (issue 17 item 7: 976-989 levels used to escape as a RecursionError, a 500).
MAX_JSON_DEPTH = 200


async def request_data() -> bytes:
    """The current request's body. A body over the limit raises werkzeug's 413."""
    return await request.get_data(cache=False, as_text=False)  # type: ignore[return-value]


async def read_body(model: type[T]) -> T:
    """Read the current request's body and `decode` it into `model`.

    Raises:
        ApiError: as `decode` does. A body over the limit raises werkzeug's 413.
    """
    return decode(model, await request_data())


def decode(model: type[T], data: bytes) -> T:
    """Decode a request body as JSON into `model` (both paths to a route share this).

    Raises:
        ApiError: 400 `invalid_json` if the body is not JSON, 422 `invalid_field` (naming the
            field) if it does not match the model.
    """
    decoder = _decoders.get(model)
    if decoder is None:
        decoder = _decoders[model] = msgspec.json.Decoder(model)
    if not data.strip():
        raise ApiError(400, "invalid_json", "the request body is empty; send a JSON object")
    try:
        value = decoder.decode(data)
    except msgspec.ValidationError as error:
        raise validation_error(str(error)) from None
    except msgspec.DecodeError as error:
        raise ApiError(
            400, "invalid_json", f"the request body is not valid JSON: {error}"
        ) from None
    except RecursionError:
        raise too_deep() from None
    # A body this deep has at least that many brackets: counting them (in C) spares the walk.
    if data.count(b"[") + data.count(b"{") > MAX_JSON_DEPTH and too_deeply_nested(value):
        raise too_deep()
    return value  # type: ignore[no-any-return]


def too_deep() -> ApiError:
    message = f"the request body nests arrays and objects deeper than {MAX_JSON_DEPTH} levels"
    return ApiError(400, "invalid_json", message)


def too_deeply_nested(value: Any) -> bool:
    """Whether `value` nests lists, dicts or structs deeper than MAX_JSON_DEPTH (`[]` is one
    level, `[[]]` two); a walk level by level, without recursion."""
    level = [value]
    for _ in range(MAX_JSON_DEPTH):  # after round k, `level` holds what k containers hold
        below: list[Any] = []
        for item in level:
            below.extend(_contents(item))
        if not below:
            return False
        level = below
    return any(map(_is_container, level))


def _is_container(item: Any) -> bool:
    return isinstance(item, dict | list | tuple | msgspec.Struct)


def _contents(item: Any) -> list[Any]:
    if isinstance(item, dict):
        return list(item.values())
    if isinstance(item, list | tuple):
        return list(item)
    if isinstance(item, msgspec.Struct):
        return [getattr(item, name) for name in item.__struct_fields__]
    return []


def validation_error(message: str) -> ApiError:
    """A 422 for msgspec's validation `message`, naming the field it is about."""
    field = None
    for pattern in (_MISSING_FIELD, _UNKNOWN_FIELD, _FIELD_AT):
        match = pattern.search(message)
        if match and match.group(1):
            field = match.group(1)
            break
    return ApiError(422, "invalid_field", message, field=field)


def query_int(name: str, default: int, *, low: int, high: int) -> int:
    """An integer query parameter within [low, high], or a 422 naming it."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(
            422, "invalid_field", f"{name} must be an integer, got {raw!r}", field=name
        ) from None
    if not low <= value <= high:
        message = f"{name} must be between {low} and {high}, got {value}"
        raise ApiError(422, "invalid_field", message, field=name)
    return value


def query_float(name: str, default: float, *, low: float, high: float) -> float:
    """A number query parameter within [low, high], or a 422 naming it."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        message = f"{name} must be a number, got {raw!r}"
        raise ApiError(422, "invalid_field", message, field=name) from None
    if not low <= value <= high:
        message = f"{name} must be between {low:g} and {high:g}, got {value:g}"
        raise ApiError(422, "invalid_field", message, field=name)
    return value
