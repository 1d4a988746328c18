"""The Backend interface: what the store actor asks of the place it keeps tasks."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import NamedTuple, Protocol

import trio

from ..cores.record import TaskRecord
from ..task import TaskState


class Backend(Protocol):
    """Storage for the store actor; every method is called from that one actor only.

    ``commit`` is one transaction: all of it lands or none does. Records handed to ``commit``
    may be mutated by the store afterwards; a backend that keeps them must copy what it needs.

    A backend declares what it is: ``durable`` (its tasks outlive the engine that wrote them;
    False only for a store held in this engine's own memory, which answers at once and needs
    no deadline) and ``shared`` (several engines may use it at once: see SharedBackend).
    """

    durable: bool
    shared: bool

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def load_unfinished(self) -> list[TaskRecord]:
        """Every pending, running or retrying task, oldest first (recovery)."""
        ...

    async def last_number(self) -> int:
        """The highest task number ever given out (0 if none)."""
        ...

    async def commit(
        self, changed: Collection[TaskRecord], deleted: Collection[str]
    ) -> Collection[str]:
        """Write ``changed`` and delete ``deleted`` (finished tasks only) in one transaction.

        Returns the ids of records whose write was refused because this node no longer owns
        them (shared backends, see SharedBackend); a backend of one engine returns ``()``.
        """
        ...

    async def get(self, task_id: str) -> TaskRecord | None: ...

    async def get_many(self, ids: Sequence[str]) -> list[TaskRecord]:
        """The tasks with these ids that exist, in any order: one read for all of them."""
        ...

    async def get_by_number(self, number: int) -> TaskRecord | None: ...

    async def find_key(self, key: str) -> TaskRecord | None: ...

    async def query(
        self,
        state: TaskState | None,
        type: str | None,
        limit: int,
        before: int | None,
        owner: str | None = None,
    ) -> list[TaskRecord]:
        """Up to ``limit`` tasks numbered below ``before`` (if given), newest first."""
        ...

    async def counts(self) -> dict[tuple[str, TaskState], int]:
        """How many tasks there are of each (type, state)."""
        ...

    async def finished_since(
        self, after: float, limit: int, owner: str | None = None
    ) -> list[TaskRecord]:
        """Up to ``limit`` tasks (of ``owner``, if given) finished after ``after`` (wall clock),
        oldest finish first: with the unfinished ones, every task changed since then."""
        ...

    async def purge(self, before: float, limit: int) -> dict[tuple[str, TaskState], int]:
        """Delete up to ``limit`` finished tasks whose ``finished_at`` (wall clock) is below
        ``before``, oldest first, in one transaction; returns how many of each (type, state)
        went, so the store keeps its counts without a full count."""
        ...


class Notice(NamedTuple):
    """What a shared backend tells a listening node. ``kind``:

    - ``ready``: tasks became claimable (submitted, retried, delayed ones coming due soon, or
      released by a reap); no ids, claim to find out;
    - ``finished``: these tasks finished (on any node): wake whoever waits on them here;
    - ``cancelled``: these tasks were cancelled by a node that did not own them: their owner
      drops them and interrupts their worker;
    - ``listening``: (re)subscribed; notices may have been missed before this one.
    """

    kind: str
    ids: tuple[str, ...] = ()


class SharedBackend(Backend, Protocol):
    """A backend several engines ("nodes") share: the queue's truth lives in it.

    A node **owns** a task it claimed until it finishes it, releases it, or its lease expires
    and any node reaps it. Ownership is the ``node`` column plus a lease deadline; claims and
    leases use the backend's clock (one clock for every node). A claimed task keeps its state
    (pending or retrying): the owner's store starts it (running, attempts + 1) as usual.

    ``commit`` (the Backend method) follows these rules per changed record:
    - never committed before: inserted as it is: unowned (``node`` None), or, if ``node`` is
      this node (a node may keep what is submitted to it), owned with a fresh lease;
    - ``record.node`` is this node (an owner's transition): written only while the stored row
      is still owned by this node, else its id is returned as lost; a finished record clears
      the stored owner and lease;
    - any other record (a cancel or a retry by a node that does not own it): a cancel
      (state cancelled) is written only if the stored row is unfinished, a retry (state
      pending) only if it is failed; both clear the stored owner and lease; else lost.
    Deletes remove finished rows only. With the transaction, the backend publishes notices
    (see Notice): ``ready`` if it inserted unowned tasks or re-queued claimable ones,
    ``finished`` with the ids that finished, ``cancelled`` with the ids cancelled by a
    non-owner. A node never hears its own notices (reap and release included): it knows.

    ``load_unfinished`` returns the unfinished tasks this node owns; ``counts`` counts the
    whole shared store; ``last_number`` is unused (see ``reserve_numbers``).
    """

    def attach(
        self,
        node: str,
        lease_for: Callable[[str], float],
        runs: Collection[str] | None = None,
    ) -> None:
        """Called once, before ``open``: this node's name (unique among live nodes), the
        lease, in seconds, of a task of each type, and the types this node can run (its
        registry's names; None: any). ``claim`` takes only tasks of those types, so a task
        no live node can run stays pending instead of failing on a node without its handler."""
        ...

    async def reserve_numbers(self) -> range:
        """Task numbers for this node alone (unique across nodes, increasing): a block."""
        ...

    async def claim(self, limit: int, within: float) -> list[TaskRecord]:
        """Own up to ``limit`` pending or retrying tasks of the types this node runs (see
        ``attach``) due within ``within`` seconds (``run_at`` None or <= now + within), owned
        by no node or by one whose lease expired;
        highest priority first, then lowest number. Each gets ``node`` = this node and a lease
        of ``lease_for(type)`` seconds. One atomic step: no two nodes own a task at once."""
        ...

    async def renew(self) -> Collection[str]:
        """Extend the lease of every unfinished task this node's store holds (those it claimed,
        loaded or kept, and has not finished) while the node still owns it. Returns the ids it
        held that are no longer its own (the lease ran out and another node took the task, or
        the task ended elsewhere): the store stops running them. Gives back what the node owns
        without its store holding it (a claim whose answer was lost)."""
        ...

    async def reap(self) -> int:
        """Release every unfinished task whose lease expired, whoever owned it: a running one
        goes back to pending (its attempt stays counted). Returns how many; any node may run
        it, twice is harmless. Publishes ``ready`` if it released any."""
        ...

    async def release(self) -> int:
        """A graceful stop: give back every unfinished task this node owns (running ones go
        back to pending, attempt counted) and publish ``ready``. Returns how many."""
        ...

    async def unfinished_count(self) -> int:
        """How many tasks are pending, running or retrying in the whole shared store."""
        ...

    async def queued_by_priority(self) -> dict[int, int]:
        """How many tasks wait to run (pending or retrying, claimed or not) in the whole
        shared store, by priority; priorities with none are left out. Kept by the backend
        (Redis: a hash the scripts keep) or read from an index (PostgreSQL): never a scan."""
        ...

    async def listen(self, deliver: Callable[[Notice], None]) -> None:
        """Run until cancelled, calling ``deliver`` (from the trio thread) for each notice;
        reconnect after errors (with backoff), delivering ``listening`` each time."""
        ...

    async def publish_events(self, payloads: Sequence[str]) -> None:
        """Send task events (encoded by relay.py) to every node, this one included, on a
        channel apart from the notices; best effort: nothing is kept for a node not listening."""
        ...

    async def others_listening(self) -> bool:
        """Whether another node may listen to the events now (False: what we publish would
        reach only ourselves, so the relay does not encode it). True when it cannot tell."""
        ...

    async def listen_events(
        self,
        deliver: Callable[[str], None],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Run until cancelled, calling ``deliver`` (from the trio thread) for each payload any
        node published; reconnect after errors (with backoff). Started once it first listens."""
        ...


def is_shared(backend: Backend) -> bool:
    """Whether several engines may share this backend (see SharedBackend)."""
    return backend.shared
