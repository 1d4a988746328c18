"""Property: random trees under random crash schedules never leak a task and never hang."""

from __future__ import annotations

import contextlib

import attrs
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oncue.actors import (
    Actor,
    ActorCrashed,
    ActorRef,
    ActorStopped,
    ChildNotFound,
    ChildSpec,
    Context,
    SupervisorGaveUp,
    SupervisorRef,
    open_supervisor,
    supervisor_spec,
)


class Boom(Exception):
    pass


@attrs.define
class Census:
    """How many actor incarnations are running right now, and how many ever started."""

    live: int = 0
    started: int = 0


class Counted(Actor):
    """Counts itself live while it runs; "crash" raises, "exit" returns, "slow" takes 1 s."""

    def __init__(self, census: Census) -> None:
        self.census = census

    async def run(self, context: Context) -> None:
        self.census.live += 1
        self.census.started += 1
        try:
            context.started()
            async for envelope in context.mailbox:
                message = envelope.message
                if message == "crash":
                    raise Boom(context.path)
                if message == "slow":
                    await trio.sleep(1)
                envelope.reply(message)
                if message == "exit":
                    return
        finally:
            self.census.live -= 1


STRATEGIES = st.sampled_from(["one_for_one", "one_for_all", "rest_for_one"])
RESTARTS = st.sampled_from(["permanent", "transient", "temporary"])


@attrs.frozen
class Tree:
    strategy: str
    max_restarts: int
    within: float
    leaves: list[str]  # restart type of each leaf of the root
    nested: tuple[str, str, int, list[str]] | None  # strategy, restart, max_restarts, leaves


@attrs.frozen
class Step:
    action: str  # crash, exit, ping, slow (to an actor) or start, stop (to a supervisor)
    target: int
    ask: bool
    pause: float


trees = st.builds(
    Tree,
    strategy=STRATEGIES,
    max_restarts=st.integers(0, 4),
    within=st.sampled_from([1.0, 5.0]),
    leaves=st.lists(RESTARTS, min_size=1, max_size=3),
    nested=st.none()
    | st.tuples(STRATEGIES, RESTARTS, st.integers(0, 3), st.lists(RESTARTS, max_size=3)),
)
steps = st.lists(
    st.builds(
        Step,
        action=st.sampled_from(["crash", "crash", "exit", "ping", "slow", "start", "stop"]),
        target=st.integers(0, 20),
        ask=st.booleans(),
        pause=st.sampled_from([0, 0, 0.5, 3]),
    ),
    max_size=12,
)


@attrs.define
class Scenario:
    tree: Tree
    census: Census = attrs.field(factory=Census)
    actors: list[ChildSpec] = attrs.field(factory=list)
    supervisors: list[ActorRef] = attrs.field(factory=list)
    dynamic: list[str] = attrs.field(factory=list)  # names of the children started at run time

    def leaf(self, name: str, restart: str) -> ChildSpec:
        return ChildSpec(name, lambda: Counted(self.census), restart=restart, shutdown=2)

    def children(self) -> list[ChildSpec]:
        tree = self.tree
        children = [self.leaf(f"leaf-{n}", restart) for n, restart in enumerate(tree.leaves)]
        self.actors.extend(children)
        if tree.nested is not None:
            strategy, restart, max_restarts, leaves = tree.nested
            grandchildren = [self.leaf(f"leaf-{n}", kind) for n, kind in enumerate(leaves)]
            self.actors.extend(grandchildren)
            mid = supervisor_spec(
                "mid", grandchildren, strategy=strategy, restart=restart, max_restarts=max_restarts
            )
            self.supervisors.append(mid.ref)
            children.insert(len(children) // 2, mid)
        return children

    async def run(self, schedule: list[Step]) -> None:
        children = self.children()
        root = await self._open_and_play(children, schedule)
        assert self.census.live == 0, "an actor incarnation outlived its tree"
        for ref in [*(spec.ref for spec in self.actors), *self.supervisors]:
            with pytest.raises(ActorStopped):
                ref.try_tell("ping")
        if root is not None:
            with pytest.raises(ActorStopped):
                await root.children()

    async def _open_and_play(
        self, children: list[ChildSpec], schedule: list[Step]
    ) -> SupervisorRef | None:
        try:
            async with open_supervisor(
                children,
                strategy=self.tree.strategy,
                max_restarts=self.tree.max_restarts,
                within=self.tree.within,
            ) as root:
                self.supervisors.append(root.ref)
                for step in schedule:
                    await self._play(step)
                    await trio.sleep(step.pause)
                for target in range(len(self.actors)):  # each answers or is stopped; none hangs
                    await self._play(Step("ping", target, ask=True, pause=0))
                await root.children()
                return root
        except SupervisorGaveUp:
            return None

    async def _play(self, step: Step) -> None:
        if step.action in ("start", "stop"):
            await self._manage(step)
            return
        spec = self.actors[step.target % len(self.actors)]
        if not step.ask:
            with contextlib.suppress(ActorStopped):
                await spec.ref.tell(step.action)
            return
        try:
            reply = await spec.ref.ask(step.action)
        except ActorCrashed:
            assert step.action == "crash"
        except ActorStopped:
            pass
        else:
            assert step.action != "crash"
            assert reply == step.action

    async def _manage(self, step: Step) -> None:
        supervisor = SupervisorRef(self.supervisors[step.target % len(self.supervisors)])
        try:
            if step.action == "start":
                spec = self.leaf(f"dynamic-{len(self.actors)}", "permanent")
                await supervisor.start_child(spec)
                self.actors.append(spec)
                self.dynamic.append(spec.name)
            elif self.dynamic:
                await supervisor.stop_child(self.dynamic[step.target % len(self.dynamic)])
        except (ActorCrashed, ActorStopped, ChildNotFound):
            pass  # that supervisor gave up or stopped, or the child lives under the other one


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(tree=trees, schedule=steps)
def test_random_crash_schedules_never_leak_a_task_or_hang(tree: Tree, schedule: list[Step]) -> None:
    async def main() -> None:
        with trio.fail_after(3600):  # on the mock clock: a hang fails at once instead of waiting
            await Scenario(tree).run(schedule)

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))


async def test_the_census_sees_incarnations_come_and_go() -> None:
    """The counter the property relies on does count: a restarted leaf started twice."""
    census = Census()
    spec = ChildSpec("leaf", lambda: Counted(census))
    async with open_supervisor([spec]):
        assert census.live == 1
        await spec.ref.tell("crash")
        assert await spec.ref.ask("ping") == "ping"
        assert (census.live, census.started) == (1, 2)
    assert census.live == 0
