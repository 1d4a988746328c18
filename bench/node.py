"""Another node for the multi-node durable runs: an engine with the bench's task types on a
shared store, running until SIGTERM (then it drains and exits 0).

Started by bench.engine as ``python -m bench.node <store URL> <workers>``; it prints
``ready`` once its engine runs.
"""

from __future__ import annotations

import signal
import sys

import trio

from bench.engine import registry
from oncue.actors import open_engine


async def main(store: str, workers: int) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with open_engine(registry=registry, store=store, workers=workers, queue_size=10**7):
            print("ready", flush=True)
            async for _ in signals:
                break


if __name__ == "__main__":
    trio.run(main, sys.argv[1], int(sys.argv[2]))
