"""`Service`: what the routes of one app share, reached from a request with `service()`."""

from __future__ import annotations

import logging
from types import TracebackType

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

    def deadline(self) -> StoreDeadline:
        """Bound the engine calls in a ``with`` block: past `store_deadline`, answer 503.

        A store stuck in its backend would otherwise hold the request (and the client) forever.
        The engine may still act on a submit given up on this way: retrying it with the same
        `key` returns that task instead of adding another.
        """
        return StoreDeadline(self.store_deadline)


class StoreDeadline:
    """`Service.deadline()`: a cancel scope that turns its expiry into a 503.

    A class rather than a generator context manager: every submit enters one, and contextlib's
    generator round trips cost more than the scope itself.
    """

    __slots__ = ("_scope", "_seconds")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._scope = trio.CancelScope(deadline=trio.current_time() + seconds)

    def __enter__(self) -> None:
        self._scope.__enter__()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        handled = self._scope.__exit__(kind, error, traceback)
        if self._scope.cancelled_caught:
            logger.warning("http.store_deadline", extra={"seconds": self._seconds})
            raise ApiError(
                503,
                "unavailable",
                f"the task store did not answer within {self._seconds:g}s; retry later"
                " (with a key, a retried submit is never added twice)",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            ) from None
        return handled


def service() -> Service:
    """The `Service` of the app handling the current request."""
    return current_app.extensions["oncue"]  # type: ignore[no-any-return]
