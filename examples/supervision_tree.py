"""A small supervision tree inside a plain trio program: inject crashes, watch the supervisors.

Run: python examples/supervision_tree.py      (add -v to also see the runtime's log lines)

The tree:

    /shop                 one_for_one, at most 3 restarts in 5 s
    ├── counter           counts the orders it is told about
    └── payments          rest_for_one, at most 1 restart in 5 s
        ├── ledger        records payments
        └── notifier      depends on the ledger: restarts whenever the ledger does

The scenario crashes the counter (one_for_one: only it restarts, and the message queued behind
the crash is still delivered), then the ledger (rest_for_one: the notifier restarts with it),
then the ledger again within 5 s, which exhausts payments' restart intensity: payments gives up
and its parent, /shop, restarts it (escalation). A worker is added and removed at run time;
leaving the block stops everything in reverse start order. Every line printed comes from the
lifecycle events the supervisors emit (the observer), or says what the scenario does next.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

import trio

from oncue.actors import (
    Actor,
    ActorCrashed,
    ChildSpec,
    EventKind,
    LifecycleEvent,
    SupervisorGaveUp,
    SupervisorRef,
    open_supervisor,
    supervisor_spec,
)


class Crash(Exception):
    """What the scenario injects: a message ``"crash"`` makes an actor raise this."""


class Counter(Actor):
    """Counts "order" messages; answers "count" with the count so far."""

    async def on_start(self, context: Any) -> None:
        self.count = 0  # a restarted counter starts from zero: state lives in the incarnation

    async def handle(self, message: str) -> int:
        if message == "crash":
            raise Crash("the counter tripped over an order")
        if message == "order":
            self.count += 1
        return self.count


class Ledger(Actor):
    """Records amounts; "crash" makes it fail."""

    async def handle(self, message: Any) -> str:
        if message == "crash":
            raise Crash("the ledger's disk is full")
        return f"recorded {message}"


class Notifier(Actor):
    async def handle(self, message: Any) -> str:
        return f"notified {message}"


VERBS = {
    EventKind.STARTED: "started",
    EventKind.STOPPED: "stopped",
    EventKind.CRASHED: "CRASHED",
    EventKind.RESTARTED: "restarted",
    EventKind.GAVE_UP: "GAVE UP",
}


class Narrator:
    """The observer: prints each lifecycle event as one readable line (it must not block)."""

    def __init__(self) -> None:
        self.counts = dict.fromkeys(EventKind, 0)
        self.seen: list[tuple[EventKind, str]] = []
        self._changed = trio.Event()

    def __call__(self, event: LifecycleEvent) -> None:
        self.counts[event.kind] += 1
        self.seen.append((event.kind, event.path))
        self._changed.set()
        self._changed = trio.Event()
        line = f"    {event.path:<24} {VERBS[event.kind]}"
        if event.kind is EventKind.RESTARTED:
            line += f" (restart #{event.restarts})"
        if isinstance(event.error, SupervisorGaveUp) and event.kind is EventKind.CRASHED:
            line += ": it gave up"  # the GAVE UP line just above says why
        elif event.error is not None:
            line += f": {type(event.error).__name__}: {event.error}"
        print(line)

    async def wait_for(self, kind: EventKind, path: str, times: int = 1) -> None:
        """Wait until ``kind`` has happened to ``path`` ``times`` times in all."""
        while self.seen.count((kind, path)) < times:
            await self._changed.wait()


def say(text: str) -> None:
    print(f"\n>>> {text}")


async def show_tree(root: SupervisorRef, payments: SupervisorRef) -> None:
    for supervisor in (root, payments):
        for child in await supervisor.children():
            error = f", last error {type(child.last_error).__name__}" if child.last_error else ""
            print(f"    {child.path:<24} {child.state.value}, {child.restarts} restarts{error}")


async def main() -> None:
    counter = ChildSpec("counter", Counter)
    ledger = ChildSpec("ledger", Ledger)
    notifier = ChildSpec("notifier", Notifier)
    payments = supervisor_spec(
        "payments", [ledger, notifier], strategy="rest_for_one", max_restarts=1, within=5
    )
    narrator = Narrator()

    say("starting the tree")
    async with open_supervisor(
        [counter, payments], name="shop", max_restarts=3, within=5, observer=narrator
    ) as root:
        payments_ref = SupervisorRef(payments.ref)
        for _ in range(3):
            await counter.ref.tell("order")
        print(f"    the counter has seen {await counter.ref.ask('count')} orders")

        say("crashing the counter (one_for_one: only it restarts)")
        try:
            await counter.ref.ask("crash")
        except ActorCrashed as error:
            print(f"    the asker got {type(error).__name__}: {error}")
        await counter.ref.tell("order")  # waits in the mailbox while the counter restarts
        print(f"    after the restart it has seen {await counter.ref.ask('count')} order")

        say("crashing the ledger (rest_for_one: the notifier restarts with it)")
        await ledger.ref.tell("crash")
        await narrator.wait_for(EventKind.RESTARTED, notifier.ref.path)
        print(f"    ledger: {await ledger.ref.ask(42)}; notifier: {await notifier.ref.ask(42)}")

        say("crashing the ledger again, within 5 s: payments gives up, /shop restarts it")
        await ledger.ref.tell("crash")
        await narrator.wait_for(EventKind.RESTARTED, payments.ref.path)
        print(f"    ledger: {await ledger.ref.ask(7)} (inside a fresh payments supervisor)")

        say("adding a worker at run time, then removing it")
        worker = await root.start_child(ChildSpec("worker-1", Notifier))
        print(f"    {worker.path}: {await worker.ask('hello')}")
        await root.stop_child("worker-1")

        say("the tree now")
        await show_tree(root, payments_ref)

        say("leaving the block: children stop in reverse start order")
    counts = ", ".join(f"{n} {kind.value}" for kind, n in narrator.counts.items())
    say(f"done: {counts}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="show the runtime's logs")
    arguments = parser.parse_args()
    # The runtime logs every crash with its traceback under the "oncue" logger; the narrator
    # tells the same story in one line each, so the logs are opt-in here.
    logging.basicConfig(
        level=logging.DEBUG if arguments.verbose else logging.CRITICAL,
        format="    log: %(levelname)s %(name)s %(message)s",
    )
    trio.run(main)
