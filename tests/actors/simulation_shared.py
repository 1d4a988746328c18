"""A deterministic simulation of several engines ("nodes") sharing one store (issue 17).

The nodes run over one SharedMemory hub (backends/shared_memory.py, the SharedBackend
reference; its faults in shared_faults.py) whose leases expire on trio's MockClock. A seeded
schedule submits, cancels and retries through random live nodes, and injects what a shared
store lives through: the store down for a while (every call fails: a Redis or PostgreSQL
restart), hanging (calls block past the commit deadline) or refusing writes while it answers
reads, commits that fail before or after writing, a node killed (kill -9: nothing released,
its leases left to expire) and started again later, a worker crashing outside its handler,
and poison tasks whose handler kills the node running them. Once the faults stop and every
node is up, the invariants of simulation.py's `check` must hold: no accepted task lost, none
stuck, none run after its cancel, attempts (counted and run) bounded, every node takes new
work, and no engine gave up by itself.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any

import attrs
import trio
from shared_faults import FaultyHub, NodeBackend
from simulation import RUNAWAY, SETTLE, Run, crash_worker, linger_for

from oncue.actors import (
    Engine,
    OncueError,
    Registry,
    TaskContext,
    TaskNotFound,
    TaskState,
    open_engine,
)
from oncue.actors.errors import ActorError, BackendError

LEASE = 5.0  # seconds: short, so a dead node's tasks come back within a schedule


@attrs.define(eq=False)
class Slot:
    """One node: its name, its current process (engine and backend), when to come back."""

    name: str
    workers: int
    engine: Engine | None = None
    backend: NodeBackend | None = None
    scope: trio.CancelScope | None = None
    back_at: float = 0.0  # trio time it may start again after a death
    up: trio.Event = attrs.field(factory=trio.Event)


@attrs.define(eq=False)
class Cluster:
    run: Run
    hub: FaultyHub
    registry: Registry
    slots: list[Slot]
    over: bool = False

    def kill(self, name: str, downtime: float, *, poison: bool = False) -> None:
        """kill -9 the node: its backend answers nothing more, its tasks' leases expire.
        ``poison``: a task did it, and must pay with its attempts (not a fault that excuses
        a rerun in `check`'s bound)."""
        slot = next(slot for slot in self.slots if slot.name == name)
        if slot.engine is None or slot.backend is None or slot.scope is None:
            return
        slot.backend.dead = True
        slot.scope.cancel()
        slot.engine = None
        slot.up = trio.Event()
        slot.back_at = trio.current_time() + downtime
        self.run.faults += not poison
        self.run.log.append(f"{trio.current_time():.3f} node {name} killed")

    def _died(self, slot: Slot, group: BaseExceptionGroup[Exception]) -> None:
        """The engine ended by itself: it could not start (the store is down: as the CLI, try
        again), or it gave up while running, which it must never do (``run.crashes``)."""
        now = trio.current_time()
        if slot.engine is not None:
            self.run.crashes.append(f"{now:.3f} node {slot.name} died by itself: {group!r}")
        self.run.log.append(f"{now:.3f} node {slot.name} ended: {group.exceptions!r}")
        slot.back_at = now + 1.0

    def live(self) -> list[Slot]:
        return [slot for slot in self.slots if slot.engine is not None]

    async def life(self, slot: Slot) -> None:
        """The node's process, started again after each death (as systemd would)."""
        seed = self.run.seed
        while not self.over:
            await trio.sleep_until(slot.back_at)
            backend = NodeBackend(self.hub)
            with trio.CancelScope() as scope:
                slot.backend, slot.scope = backend, scope
                try:
                    async with open_engine(
                        registry=self.registry,
                        store=backend,
                        node=slot.name,
                        workers=slot.workers,
                        lease=LEASE,
                        seed=seed,
                        share_events=False,
                        linger=linger_for(seed),
                    ) as engine:
                        await _answers(engine)
                        slot.engine = engine
                        slot.up.set()
                        await trio.sleep_forever()
                except* (OncueError, ActorError, BackendError) as group:
                    self._died(slot, group)
            slot.engine = None


async def _answers(engine: Engine) -> None:
    """Return once the node's store answers (a store that failed its first load crashes, and
    the engine gives up: that is a start that failed, not a running node that died)."""
    with contextlib.suppress(TaskNotFound):
        await engine.get("not-a-task")


def make_registry(cluster_of: list[Cluster]) -> Registry:
    """As simulation.py's, plus ``crash``: a poison task that kills the node running it."""
    registry = Registry()

    @registry.task("sim", retry_base=0.5, retry_cap=4.0, timeout=30.0)
    async def sim(ctx: TaskContext, payload: Any) -> Any:
        cluster = cluster_of[0]
        runs = cluster.run.executions.setdefault(ctx.task_id, [])
        runs.append(trio.current_time())
        await trio.sleep(payload["sleep"])
        kind = payload["kind"]
        if kind == "crash" and len(runs) <= RUNAWAY:
            assert ctx.node is not None
            cluster.kill(ctx.node, payload["downtime"], poison=True)
            await trio.sleep_forever()  # cancelled with the node
        if kind == "exit":
            raise SystemExit(f"task {ctx.task_id} exits")
        if kind == "fail" or (kind == "flaky" and ctx.attempt <= 1):
            raise RuntimeError(f"attempt {ctx.attempt} fails")
        if kind == "hang":
            await trio.sleep_forever()  # until its timeout
        return ctx.attempt

    return registry


async def simulate_shared(seed: int, steps: int = 20) -> Run:
    """Run one seeded schedule against 2-3 nodes on one shared store."""
    rng = random.Random(seed)
    run = Run(seed)
    holder: list[Cluster] = []
    slots = [Slot(f"n{i}", rng.randint(1, 3)) for i in range(rng.randint(2, 3))]
    cluster = Cluster(run, FaultyHub(), make_registry(holder), slots)
    holder.append(cluster)
    await _play(cluster, rng, steps)
    return run


async def _play(cluster: Cluster, rng: random.Random, steps: int) -> None:
    slots = cluster.slots
    async with trio.open_nursery() as nursery:
        for slot in slots:
            nursery.start_soon(cluster.life, slot)
        for slot in slots:
            await slot.up.wait()
        for _ in range(steps):
            await _step(cluster, rng, nursery)
        cluster.hub.heal()  # the faults stop; every node comes back
        for slot in slots:
            slot.back_at = min(slot.back_at, trio.current_time())
        for slot in slots:
            await slot.up.wait()
        await _settle(cluster)
        cluster.over = True
        nursery.cancel_scope.cancel()


async def _step(cluster: Cluster, rng: random.Random, nursery: trio.Nursery) -> None:
    run = cluster.run
    roll = rng.random()
    now = trio.current_time()
    live = cluster.live()
    engine = rng.choice(live).engine if live else None
    try:
        with trio.move_on_after(60.0):  # the node may die under the call (a poison task)
            await _operate(cluster, rng, nursery, engine, roll)
    except (OncueError, ActorError, ValueError) as error:  # refusals, or the node died: fine
        run.log.append(f"{now:.3f} refused {type(error).__name__}")


async def _operate(
    cluster: Cluster, rng: random.Random, nursery: trio.Nursery, engine: Engine | None, roll: float
) -> None:
    run, hub, live = cluster.run, cluster.hub, cluster.live()
    now = trio.current_time()
    if roll < 0.45 and engine is not None:
        await _submit(engine, run, rng)
    elif roll < 0.55 and engine is not None and run.accepted:
        task_id = rng.choice(sorted(run.accepted))
        task = await engine.cancel(task_id)
        run.log.append(f"{now:.3f} cancel {task_id} -> {task.state.value}")
        if task.state is TaskState.CANCELLED:
            run.cancelled_at.setdefault(task_id, trio.current_time())
    elif roll < 0.6 and engine is not None and run.accepted:
        retried = await engine.retry(rng.choice(sorted(run.accepted)))
        run.retries[retried.id] = run.retries.get(retried.id, 0) + 1  # attempts afresh
    elif roll < 0.68:
        hub.commit_faults.extend([rng.choice(["before", "after"])] * rng.randint(1, 3))
        run.faults += 1
        run.log.append(f"{now:.3f} commit faults {hub.commit_faults}")
    elif roll < 0.74 and not (hub.down or hub.read_only or hub.hang is not None):
        _outage(cluster, rng, nursery)
    elif roll < 0.78 and live:
        cluster.kill(rng.choice(live).name, rng.choice([0.5, 3.0, 20.0]))
    elif roll < 0.82 and engine is not None:
        crash_worker(engine, run, rng)
        await trio.sleep(2.0)  # more than a few crashes within 5 s: its supervisor gives up
    else:
        await trio.sleep(rng.choice([0.001, 0.1, 1.0, 5.0, 20.0]))


def _outage(cluster: Cluster, rng: random.Random, nursery: trio.Nursery) -> None:
    """The store goes down, hangs or refuses writes for a while, then comes back by itself."""
    hub = cluster.hub
    how = rng.choice(["down", "down", "hangs", "read-only"])
    seconds = rng.choice([0.5, 3.0, 15.0, 40.0])
    if how == "hangs":
        hub.hang = trio.Event()
    elif how == "down":
        hub.down = True
    else:
        hub.read_only = True
    cluster.run.faults += 1
    cluster.run.log.append(f"{trio.current_time():.3f} store {how}")

    async def recover() -> None:
        await trio.sleep(seconds)
        hub.heal()

    nursery.start_soon(recover)


async def _submit(engine: Engine, run: Run, rng: random.Random) -> None:
    kind = rng.choice(["ok", "ok", "ok", "flaky", "fail", "exit", "hang", "crash"])
    payload = {
        "kind": kind,
        "sleep": rng.choice([0.0, 0.0005, 0.01, 0.5, 3.0]),
        "downtime": rng.choice([0.1, 2.0, 10.0]),
    }
    max_retries = rng.randint(0, 3)
    task = await engine.submit("sim", payload, max_retries=max_retries)
    run.accepted[task.id] = max_retries
    run.log.append(f"{trio.current_time():.3f} submit {task.id} {payload} {max_retries}")


async def _settle(cluster: Cluster) -> None:
    """Faults have stopped: every task must finish, and every node must take new work."""
    run = cluster.run
    with trio.move_on_after(SETTLE):
        for task_id in run.accepted:
            run.final[task_id] = await _on_a_node(cluster, "wait", task_id)
        ups = []
        for slot in cluster.slots:
            ok = {"kind": "ok", "sleep": 0.0}
            task = await _on_a_node(cluster, "submit", "sim", ok, slot=slot)
            ups.append((await _on_a_node(cluster, "wait", task.id)).state is TaskState.COMPLETED)
        run.up_after_faults = all(ups)
    for task_id in run.accepted:  # what did not finish in time, as it is
        if task_id not in run.final:
            with trio.move_on_after(SETTLE):
                run.final[task_id] = await _on_a_node(cluster, "get", task_id)


async def _on_a_node(cluster: Cluster, method: str, *args: Any, slot: Slot | None = None) -> Any:
    """``engine.method(*args)`` on a live node (``slot``'s, if given), asked again on another
    while nodes die (a poison task may still kill one) or the store recovers."""
    while True:
        candidates = [slot] if slot is not None else cluster.slots
        live = [candidate.engine for candidate in candidates if candidate.engine is not None]
        if not live:
            await trio.sleep(1.0)
            continue
        with trio.move_on_after(30.0):
            try:
                return await getattr(live[0], method)(*args)
            except (OncueError, ActorError):  # unavailable while recovering, or a node died
                await trio.sleep(1.0)
