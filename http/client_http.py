"""What `Client` and `AsyncClient` share: their defaults, the checked base URL and headers,
and a plan's `Request` as an httpx request. Each client drives the plans (client_plans.py)
with its own I/O: client.py blocks, client_async.py awaits.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import httpx

from oncue.actors import InvalidField, TaskState

from .client_plans import Calls, Request

Statuses = TaskState | str | Iterable[TaskState | str]
DEFAULT_TIMEOUT = 10.0  # seconds for one request to be answered (a long-poll gets more)
DEFAULT_RETRIES = 3


def checked_base(
    url: str, token: str | None, timeout: float, retries: int
) -> tuple[str, Calls, dict[str, str]]:
    """The checked base URL, the calls' plans, and the headers every request carries."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidField(
            "url", f"url must look like http://host:port (or https://...), got {url!r}"
        )
    if not (isinstance(timeout, int | float) and timeout > 0):
        raise InvalidField("timeout", f"timeout must be a number of seconds > 0, got {timeout!r}")
    if not (isinstance(retries, int) and retries >= 0):
        raise InvalidField("retries", f"retries must be an int >= 0, got {retries!r}")
    base = url.rstrip("/")
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return base, Calls(base, retries), headers


def keywords(**options: Any) -> dict[str, Any]:
    """A call's options as the plans take them (by name, None for unset)."""
    return options


def to_httpx(
    http: httpx.Client | httpx.AsyncClient, request: Request, timeout: httpx.Timeout | None
) -> httpx.Request:
    """The httpx request of `request` (`timeout`, or its own, or the client's)."""
    return http.build_request(
        request.method,
        request.path,
        json=request.json,
        params=request.params,
        headers=request.headers,
        timeout=timeout or request.timeout or httpx.USE_CLIENT_DEFAULT,
    )
