"""What the Redis backend checks when it opens a store: the node's name, the key layout.

Both look at the other clients connected (``CLIENT LIST``), by their names: a node names
each of its connections ``oncue2<role>:<prefix>:<node>`` (role ``''`` for the store's,
``-listen``, ``-publish``, ``-events``); ``oncue2`` marks a node of layout 2, as nodes of
layout 1 named theirs ``oncue<role>:<prefix>:<node>``. Where CLIENT LIST is not allowed,
nothing is seen.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import NodeNameInUse
from .redis_codec import LAYOUT
from .redis_wire import RedisError

logger = logging.getLogger(__name__)

CLIENT = "oncue2"  # the head of this layout's client names
MIGRATE_BLOCK = 1000  # tasks one migration script converts (Redis blocks meanwhile)

Call = Callable[..., Awaitable[Any]]


def client_name(role: str, prefix: str, node: str) -> str:
    return f"{CLIENT}{role}:{prefix}:{node}"


async def client_names(call: Call) -> list[str] | None:
    """The names of the clients connected (None where CLIENT LIST is not allowed)."""
    try:
        clients = await call("CLIENT", "LIST", "TYPE", "normal")
    except RedisError:
        return None
    text = clients.decode() if isinstance(clients, bytes) else str(clients)
    return [
        word[5:] for line in text.splitlines() for word in line.split() if word.startswith("name=")
    ]


def older_nodes(names: list[str], prefix: str) -> int:
    """How many of these clients are a layout-1 node's on this prefix: ``oncue:`` or
    ``oncue-<role>:``, then the prefix (``oncue2`` names are not)."""
    found = 0
    for name in names:
        head, _, rest = name.partition(":")
        if (head == "oncue" or head.startswith("oncue-")) and rest.startswith(f"{prefix}:"):
            found += 1
    return found


async def check_name(call: Call, prefix: str, node: str) -> None:
    """Refuse a node name a live node uses (its connections carry it as their client
    name, and go when its process dies): two live nodes of one name would renew each
    other's tasks away and run them twice. Unchecked where CLIENT LIST is not allowed."""
    if not node:
        return
    names = await client_names(call)
    if names is not None and names.count(client_name("", prefix, node)) > 1:  # ours, another
        raise NodeNameInUse(node)


async def check_layout(call: Call, script: Call, prefix: str) -> None:
    """Read the store's key layout (``P layout``), or write this one into a store never used;
    migrate layout 1 (an older oncue's) to this one, 1,000 tasks a script. Either write is
    refused while a layout-1 node is connected to the prefix (it would go on writing layout
    1); so is a layout newer than this code's."""
    layout = int(await script("layout", LAYOUT, "0"))
    if layout < LAYOUT:
        await _refuse_older_nodes(call, prefix, layout)
    if layout == 0:  # never used: take it, unless another node wrote meanwhile
        layout = int(await script("layout", LAYOUT, "1"))
    if layout > LAYOUT:
        raise RuntimeError(
            f"the redis store at prefix {prefix!r} has key layout {layout}, written by"
            f" a newer oncue; this one reads layout {LAYOUT} (docs/stores.md)"
        )
    if layout == LAYOUT:
        return
    start = 0
    while start >= 0:
        start = int(await script("migrate", start, MIGRATE_BLOCK))
    logger.warning("redis.migrated", extra={"prefix": prefix, "layout": LAYOUT})


async def _refuse_older_nodes(call: Call, prefix: str, layout: int) -> None:
    names = await client_names(call)
    if names is None:
        logger.warning(
            "redis.layout_unchecked",
            extra={
                "prefix": prefix,
                "layout": layout or "new",
                "risk": "CLIENT LIST is not allowed: a node of an older oncue connected to"
                f" this prefix is not seen, and would write layout 1 into layout {LAYOUT}",
            },
        )
        return
    older = older_nodes(names, prefix)
    if not older:
        return
    what = "is new" if layout == 0 else "has key layout 1, written by an older oncue"
    raise RuntimeError(
        f"the redis store at prefix {prefix!r} {what}, and {older} clients of an older oncue"
        f" (layout 1) are connected to it: stop every node of the older oncue on it, then"
        f" start this one, which writes layout {LAYOUT} (docs/stores.md)"
    )
