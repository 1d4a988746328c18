"""`Service`: what the routes of one app share, reached from a request with `service()`."""

from __future__ import annotations

import logging
from types import TracebackType

import attrs
import msgspec
import trio
from quart import current_app

from oncue.actors import Engine
from oncue.actors.runtime.deadlines import AskDeadlines, AskTimedOut, Bound

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
    # The asks' deadlines while the app is served (its lifespan runs the sweeper).
    asks: AskDeadlines = attrs.field(init=False)

    @asks.default
    def _asks_of_store_deadline(self) -> AskDeadlines:
        return AskDeadlines(self.store_deadline)

    def check_payload(self, payload: object, field: str = "payload") -> str:
        """`payload` as JSON text; raise 413 naming `field` if it is more than `payload_limit`
        bytes. The engine commits that text to a durable store instead of encoding it again."""
        encoded = msgspec.json.encode(payload)
        size = len(encoded)
        if size > self.payload_limit:
            message = f"{field} is {size} bytes as JSON; the most is {self.payload_limit}"
            raise ApiError(413, "payload_too_large", message, field=field)
        return encoded.decode()

    def deadline(self, *, asks_only: bool = False) -> StoreDeadline:
        """Bound the engine calls in a ``with`` block: past `store_deadline`, answer 503.

        A store stuck in its backend would otherwise hold the request (and the client) forever.
        The engine may still act on a submit given up on this way: retrying it with the same
        `key` returns that task instead of adding another. A cancel scope bounds the block;
        `asks_only` (the submit routes: their engine call is one ask to the store) bounds each
        ask in it instead, by the sweeper of `asks` while the app is served
        (actors/runtime/deadlines.py: a deque append, where the cancel scope cost ~5 µs, a
        tenth of the app's own work on a submit).
        """
        asks = self.asks
        if asks_only and asks.running:
            asks.seconds = self.store_deadline  # (a change reorders deadlines: see run())
            return StoreDeadline(self.store_deadline, asks)
        return StoreDeadline(self.store_deadline, None)


class StoreDeadline:
    """`Service.deadline()`: asks (or a cancel scope) bounded in time, their expiry a 503.

    A class rather than a generator context manager: every submit enters one, and contextlib's
    generator round trips cost more than the bound itself.
    """

    __slots__ = ("_bound", "_scope", "_seconds")

    def __init__(self, seconds: float, asks: AskDeadlines | None) -> None:
        self._seconds = seconds
        self._bound: Bound | None = None
        self._scope: trio.CancelScope | None = None
        if asks is not None:
            self._bound = asks.bound()
        else:
            self._scope = trio.CancelScope(deadline=trio.current_time() + seconds)

    def __enter__(self) -> None:
        if self._bound is not None:
            self._bound.__enter__()
        else:
            self._scope.__enter__()  # type: ignore[union-attr]

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        if self._bound is not None:
            self._bound.__exit__(kind, error, traceback)
            handled, expired = False, isinstance(error, AskTimedOut)
        else:
            scope = self._scope
            handled = scope.__exit__(kind, error, traceback)  # type: ignore[union-attr]
            expired = scope.cancelled_caught  # type: ignore[union-attr]
        if expired:
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
