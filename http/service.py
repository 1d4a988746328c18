"""`Service`: what the routes of one app share, reached from a request with `service()`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import attrs
import msgspec
import trio
from quart import current_app

from oncue.actors import Engine

from .errors import RETRY_AFTER_SECONDS, ApiError
from .metrics import Metrics

logger = logging.getLogger(__name__)

DEFAULT_MAX_PAYLOAD = 256 * 1024
DEFAULT_STORE_DEADLINE = 10.0


@attrs.define
class Service:
    """What the routes share: the engine, the metrics, the limits, and whether we are draining."""

    engine: Engine
    metrics: Metrics
    batch_limit: int
    payload_limit: int = DEFAULT_MAX_PAYLOAD
    store_deadline: float = DEFAULT_STORE_DEADLINE
    draining: trio.Event = attrs.field(factory=trio.Event)
    log_tasks: bool = True  # one log line per task transition (serve(log_tasks=False): none)

    def check_payload(self, payload: object, field: str = "payload") -> str:
        """`payload` as JSON text; raise 413 naming `field` if it is more than `payload_limit`
        bytes. The engine commits that text to a durable store instead of encoding it again."""
        encoded = msgspec.json.encode(payload)
        size = len(encoded)
        if size > self.payload_limit:
            message = f"{field} is {size} bytes as JSON; the most is {self.payload_limit}"
            raise ApiError(413, "payload_too_large", message, field=field)
        return encoded.decode()

    @contextmanager
    def deadline(self) -> Iterator[None]:
        """Bound the engine calls in the block: past `store_deadline`, answer 503.

        A store stuck in its backend would otherwise hold the request (and the client) forever.
        The engine may still act on a submit given up on this way: retrying it with the same
        `key` returns that task instead of adding another.
        """
        with trio.move_on_after(self.store_deadline) as scope:
            yield
        if scope.cancelled_caught:
            logger.warning("http.store_deadline seconds=%g", self.store_deadline)
            raise ApiError(
                503,
                "unavailable",
                f"the task store did not answer within {self.store_deadline:g}s; retry later"
                " (with a key, a retried submit is never added twice)",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )


def service() -> Service:
    """The `Service` of the app handling the current request."""
    return current_app.extensions["oncue"]  # type: ignore[no-any-return]
