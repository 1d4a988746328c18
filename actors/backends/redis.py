"""The Redis backend: several engines share one queue in Redis; sync redis-py in trio threads.

Every change is one Lua script (redis_lua.py has the key layout), so claims, commits and reaps
are atomic and need no locks or WATCH retries. Ownership is a node name plus a deadline in a
sorted set on Redis's own clock (``TIME``), the same clock for every node.

Why threads: coredis runs under trio, but a coredis client must be held as ``async with`` (its
pool keeps an anyio task group), which the Backend's separate ``open()``/``close()`` calls from
a store actor that may die between them cannot do; redis-py's asyncio client does not run under
trio. So, as for psycopg: redis-py's sync client, each call in a trio worker thread behind a
CapacityLimiter, abandoned on cancellation (the script still runs to its end on the server,
atomically: either all of it happened or none). Scripts are never retried by the client: a
retried commit could apply twice; the store's outage handling reloads instead.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import trio

if TYPE_CHECKING:  # the redis extra: imported when a backend opens (see postgres.py)
    import redis

from ..record import TaskRecord
from ..task import UNFINISHED, TaskState
from .base import Notice
from .redis_codec import decode, encode
from .redis_lua import PRELUDE, SCRIPTS

T = TypeVar("T")
logger = logging.getLogger(__name__)

NUMBER_BLOCK = 1024  # task numbers a node reserves at a time
FALLBACK_LEASE = 30.0  # a claimed task of a type this node has not seen yet, until corrected
QUERY_BUDGET = 2000  # index entries one listing script reads at most (Redis blocks meanwhile)
THREADS = 2  # the store calls one at a time; the second serves a call while one is abandoned

_UNFINISHED = [state.value for state in UNFINISHED]


def split_url(url: str) -> tuple[str, str]:
    """The redis-py URL without oncue's own ``prefix`` option, and that prefix (default oncue)."""
    parts = urlsplit(url)
    options = parse_qsl(parts.query)
    prefix = dict(options).get("prefix", "oncue")
    rest = urlencode([(name, value) for name, value in options if name != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


class RedisBackend:
    """Tasks in one Redis database under one key prefix, shared by every node attached to it."""

    shared = True

    def __init__(self, url: str) -> None:
        self.url, self.prefix = split_url(url)
        self.keys = f"{{{self.prefix}}}:"
        self.node = ""
        self._lease_for: Callable[[str], float] = lambda name: FALLBACK_LEASE
        self._leases: dict[str, float] = {}  # lease_for of each type seen: claim passes them
        # Tasks this node claimed or loaded and has not finished: their rows exist, so a write
        # sends what a transition changes, not the payload again. A hint only: a row missing
        # after all turns such a write into a lost one.
        self._known: set[str] = set()
        self._limiter = trio.CapacityLimiter(THREADS)
        self._client: redis.Redis | None = None
        self._scripts: dict[str, Any] = {}

    def attach(self, node: str, lease_for: Callable[[str], float]) -> None:
        self.node = node
        self._lease_for = lease_for

    def _lease(self, type_: str) -> float:
        lease = self._leases.get(type_)
        if lease is None:
            lease = self._leases[type_] = float(self._lease_for(type_))
        return lease

    async def _run(self, function: Callable[..., T], *args: Any) -> T:
        return await trio.to_thread.run_sync(
            function, *args, limiter=self._limiter, abandon_on_cancel=True
        )

    async def _script(self, name: str, *args: Any) -> Any:
        if not self._scripts:
            raise RuntimeError("the Redis backend is not open")
        script = self._scripts[name]
        return await self._run(lambda: script(keys=[self.keys], args=args))

    async def open(self) -> None:
        if self._client is not None:
            return
        import redis
        from redis.retry import Retry

        client = redis.Redis.from_url(
            self.url,
            decode_responses=True,
            socket_timeout=30.0,
            socket_connect_timeout=5.0,
            retry=Retry(redis.backoff.NoBackoff(), 0),  # never run a script twice
        )
        await self._run(client.ping)
        self._scripts = {
            name: client.register_script(PRELUDE + body) for name, body in SCRIPTS.items()
        }
        self._client = client

    async def close(self) -> None:
        if self._client is not None:
            client, self._client = self._client, None
            self._scripts = {}
            await self._run(client.close)

    @property
    def _redis(self) -> redis.Redis:
        if self._client is None:
            raise RuntimeError("the Redis backend is not open")
        return self._client

    async def load_unfinished(self) -> list[TaskRecord]:
        owned = await self._run(self._redis.smembers, f"{self.keys}owned:{self.node}")
        records = await self._hashes([str(task_id) for task_id in owned])
        self._known = {record.id for record in records if record.state in UNFINISHED}
        return sorted(
            (record for record in records if record.state in UNFINISHED),
            key=lambda record: record.number,
        )

    async def _hashes(self, ids: list[str]) -> list[TaskRecord]:
        def fetch() -> list[dict[str, str]]:
            with self._redis.pipeline(transaction=False) as pipe:
                for task_id in ids:
                    pipe.hgetall(f"{self.keys}task:{task_id}")
                return list(pipe.execute())

        found = await self._run(fetch) if ids else []
        return [decode([i for pair in fields.items() for i in pair]) for fields in found if fields]

    async def last_number(self) -> int:
        return int(await self._run(self._redis.get, f"{self.keys}number") or 0)

    async def reserve_numbers(self) -> range:
        last = int(await self._run(self._redis.incrby, f"{self.keys}number", NUMBER_BLOCK))
        return range(last - NUMBER_BLOCK + 1, last + 1)

    async def commit(
        self, changed: Collection[TaskRecord], deleted: Collection[str]
    ) -> Collection[str]:
        args: list[str] = [self.node, str(len(changed))]
        known = self._known
        for record in changed:  # encoded now: the store mutates the records later
            whole = record.id not in known or record.node != self.node
            args.extend(encode(record, self._lease(record.type), full=whole))
        args.extend(deleted)
        lost = list(await self._script("commit", *args))
        for record in changed:
            if record.state.finished:
                known.discard(record.id)
        known.difference_update(lost)
        return lost

    async def claim(self, limit: int, within: float) -> list[TaskRecord]:
        leases = [str(item) for pair in self._leases.items() for item in pair]
        found = await self._script("claim", self.node, limit, within, FALLBACK_LEASE, *leases)
        claimed = [decode(flat) for flat in found]
        self._known.update(record.id for record in claimed)
        unknown = [record for record in claimed if record.type not in self._leases]
        if unknown:  # types first seen here: their lease was the fallback until now
            pairs = [str(item) for r in unknown for item in (r.id, self._lease(r.type))]
            await self._script("set_leases", self.node, *pairs)
        return claimed

    async def renew(self) -> int:
        return int(await self._script("renew", self.node))

    async def reap(self) -> int:
        return int(await self._script("reap"))

    async def release(self) -> int:
        self._known.clear()
        return int(await self._script("release", self.node))

    async def unfinished_count(self) -> int:
        def count() -> int:
            with self._redis.pipeline(transaction=False) as pipe:
                for state in _UNFINISHED:
                    pipe.zcard(f"{self.keys}state:{state}")
                return sum(pipe.execute())

        return await self._run(count)

    async def get(self, task_id: str) -> TaskRecord | None:
        found = await self._hashes([task_id])
        return found[0] if found else None

    async def get_by_number(self, number: int) -> TaskRecord | None:
        flat = await self._script("find", "number", number)
        return decode(flat) if flat else None

    async def find_key(self, key: str) -> TaskRecord | None:
        flat = await self._script("find", "key", key)
        return decode(flat) if flat else None

    async def query(
        self,
        state: TaskState | None,
        type: str | None,
        limit: int,
        before: int | None,
        owner: str | None = None,
    ) -> list[TaskRecord]:
        indexes = [
            f"{kind}:{value}"
            for kind, value in (("state", state), ("type", type), ("owner", owner))
            if value is not None
        ]
        filters = [state or "", type or "", owner or ""]
        upper = "+inf" if before is None else f"({before}"
        found: list[TaskRecord] = []
        while upper and len(found) < limit:
            flats, upper = await self._script(
                "query", upper, limit - len(found), QUERY_BUDGET, *filters, *indexes
            )
            found.extend(decode(flat) for flat in flats)
        return found

    async def counts(self) -> dict[tuple[str, TaskState], int]:
        fields = await self._run(self._redis.hgetall, f"{self.keys}counts")
        counts: dict[tuple[str, TaskState], int] = {}
        for field, value in fields.items():
            state, _, type_ = str(field).partition(":")
            counts[type_, TaskState(state)] = int(value)
        return counts

    async def purge(self, before: float, limit: int) -> dict[tuple[str, TaskState], int]:
        gone = await self._script("purge", repr(before), limit)
        purged: dict[tuple[str, TaskState], int] = {}
        for type_, state in zip(gone[::2], gone[1::2], strict=True):
            purged[type_, TaskState(state)] = purged.get((type_, TaskState(state)), 0) + 1
        return purged

    async def listen(self, deliver: Callable[[Notice], None]) -> None:
        """Subscribe on a connection of its own (in a thread); reconnect with backoff."""
        stop = threading.Event()
        delay = 0.05

        def forward(notice: Notice) -> None:  # runs in the trio thread
            nonlocal delay
            if not stop.is_set():
                if notice.kind == "listening":
                    delay = 0.05
                deliver(notice)

        try:
            while True:
                try:
                    await trio.to_thread.run_sync(
                        self._subscribe, forward, stop, abandon_on_cancel=True
                    )
                except Exception as error:  # the driver's errors: reconnect after a pause
                    logger.warning("redis.listen_failed error=%r retry_in=%.2fs", error, delay)
                await trio.sleep(delay)
                delay = min(delay * 2, 5.0)
        finally:
            stop.set()

    def _subscribe(self, forward: Callable[[Notice], None], stop: threading.Event) -> None:
        """In a worker thread: read notices until ``stop``; every (re)subscription says so."""
        import redis

        client = redis.Redis.from_url(
            self.url,
            decode_responses=True,
            socket_connect_timeout=5.0,
            socket_keepalive=True,
            client_name=f"oncue-listen:{self.prefix}:{self.node}",
        )
        pubsub = client.pubsub()  # type: ignore[no-untyped-call]
        try:
            pubsub.subscribe(f"{self.keys}notices")
            while not stop.is_set():
                message = pubsub.get_message(timeout=0.25)
                if message is None:
                    continue
                if message["type"] == "subscribe":
                    notice = Notice("listening")
                elif message["type"] == "message":
                    kind, ids = json.loads(message["data"])
                    notice = Notice(kind, tuple(ids))
                else:
                    continue
                trio.from_thread.run_sync(forward, notice)
        finally:
            pubsub.close()
            client.close()
