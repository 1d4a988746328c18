"""What PostgreSQL nodes tell each other: NOTIFY payloads, and the threads that LISTEN.

Two channels per schema: ``oncue_<schema>`` carries the notices that wake idle nodes (JSON
``[kind, origin node, ids...]``, sent in the committing transaction), and
``oncue_<schema>_events`` the task events the relay spreads (relay.py encodes them). Each
listener is a thread blocked in LISTEN on a connection of its own, which hands what arrives to
trio; after an error it reconnects with a doubling backoff, started over once a connection
has worked a while.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Collection

import trio

from .base import Notice

logger = logging.getLogger(__name__)

NOTICE_IDS = 250  # ids per NOTIFY: a payload must stay under 8,000 bytes
LISTEN_RETRY = (0.1, 5.0)  # seconds between reconnects of a listener, doubling
POLL = 0.5  # seconds a listening thread waits for a notification before it checks `stop`

Pump = Callable[[threading.Event], None]  # a listening thread's work, until `stop` is set


def channels(schema: str) -> tuple[str, str]:
    """The notices' channel and the events' channel of a schema (at most 63 bytes each)."""
    return f"oncue_{schema}"[:63], f"oncue_{schema}_events"[:63]


def notices(channel: str, node: str, kind: str, ids: Collection[str] = ()) -> list[tuple[str, str]]:
    """pg_notify arguments for a notice from ``node``, its ids spread over payloads small
    enough."""
    if not ids:
        return [(channel, json.dumps([kind, node]))]
    listed = list(ids)
    return [
        (channel, json.dumps([kind, node, *listed[start : start + NOTICE_IDS]]))
        for start in range(0, len(listed), NOTICE_IDS)
    ]


async def keep_listening(pump: Pump, what: str, *, reset: bool = True) -> None:
    """Run ``pump`` in a thread of its own for ever, again after each failure (logged as
    ``postgres.<what>_failed``) with a doubling backoff; ``reset``: start the backoff over once a
    connection has lasted longer than the longest wait."""
    delay = LISTEN_RETRY[0]
    while True:
        stop = threading.Event()
        began = trio.current_time()
        try:
            await trio.to_thread.run_sync(
                pump, stop, abandon_on_cancel=True, limiter=trio.CapacityLimiter(1)
            )
        except Exception as error:  # the connection's errors: reconnect
            logger.warning(
                f"postgres.{what}_failed", extra={"error": repr(error), "retry_in": delay}
            )
        finally:
            stop.set()  # an abandoned pump sees it within its poll
        if reset and trio.current_time() - began > LISTEN_RETRY[1]:  # it had worked
            delay = LISTEN_RETRY[0]
        await trio.sleep(delay)
        delay = min(delay * 2, LISTEN_RETRY[1])


def pump_notices(
    url: str, channel: str, node: str, deliver: Callable[[Notice], None], stop: threading.Event
) -> None:
    """In a thread: LISTEN on ``channel``; hand trio each notice from another node."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        trio.from_thread.run_sync(deliver, Notice("listening"))
        while not stop.is_set():
            for notify in connection.notifies(timeout=POLL):
                kind, origin, *ids = json.loads(notify.payload)
                if origin != node:  # what we did, we know
                    trio.from_thread.run_sync(deliver, Notice(kind, tuple(ids)))


def pump_events(
    url: str,
    channel: str,
    deliver: Callable[[str], None],
    started: list[Callable[[], None]],
    stop: threading.Event,
) -> None:
    """In a thread: LISTEN on ``channel``; call what ``started`` holds once listening, then
    hand trio each payload."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        if started:
            trio.from_thread.run_sync(started.pop())
        while not stop.is_set():
            for notify in connection.notifies(timeout=POLL):
                trio.from_thread.run_sync(deliver, notify.payload)
