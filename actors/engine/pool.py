"""The worker pool's specs, kept across restarts of the workers supervisor."""

from __future__ import annotations

import trio

from ..registry import Registry
from ..runtime.mailbox import ActorRef
from ..runtime.spec import ChildSpec
from ..runtime.supervisor import Supervisor
from .worker import Worker


class WorkerPool:
    """The worker specs the pool should have: the workers supervisor starts from these at every
    (re)start, so a pool resized at run time keeps its size when that supervisor restarts."""

    def __init__(
        self,
        scheduler: ActorRef,
        store: ActorRef,
        registry: Registry,
        grace: float,
        threads: trio.CapacityLimiter,
        node: str | None = None,
        traced: bool = False,
    ) -> None:
        self._threads = threads
        self._node = node
        self._traced = traced
        self._scheduler = scheduler
        self._store = store
        self._registry = registry
        self._grace = grace
        self._specs: dict[int, ChildSpec] = {}

    @property
    def size(self) -> int:
        """The workers the pool should have (resize changes it)."""
        return len(self._specs)

    def add(self, number: int) -> ChildSpec:
        name = f"worker-{number}"

        def make() -> Worker:
            return Worker(
                name,
                self._scheduler,
                self._store,
                self._registry,
                self._threads,
                self._node,
                self._traced,
            )

        spec = ChildSpec(name, make, mailbox_size=64, shutdown=self._grace)
        self._specs[number] = spec
        return spec

    def remove(self, number: int) -> None:
        self._specs.pop(number, None)

    def supervisor(self, max_restarts: int) -> Supervisor:
        """A workers supervisor for the current pool (a spec stopped for good is remade)."""
        for number, spec in list(self._specs.items()):
            if spec.mailbox.closed:
                self.add(number)
        specs = [self._specs[number] for number in sorted(self._specs)]
        return Supervisor(specs, strategy="one_for_one", max_restarts=max_restarts, within=5.0)
