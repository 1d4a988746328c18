"""Supervisors: children started and stopped at run time, and what a supervisor reports."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from probes import Boom, Probe

from oncue.actors import (
    Actor,
    ActorStopped,
    ChildNotFound,
    ChildSpec,
    ChildState,
    SupervisorRef,
    open_supervisor,
    supervisor_spec,
)


def probe(log: list[str], name: str, **options: Any) -> ChildSpec:
    return ChildSpec(name, lambda: Probe(log), **options)


async def test_start_child_returns_a_working_ref_and_reports_the_child() -> None:
    log: list[str] = []
    async with open_supervisor([probe(log, "static")], name="pool") as pool:
        ref = await pool.start_child(probe(log, "worker-1"))
        assert ref.path == "/pool/worker-1"
        assert await ref.ask("ping") == "ping"
        infos = await pool.children()
    assert [(i.name, i.path, i.state, i.restarts, i.last_error) for i in infos] == [
        ("static", "/pool/static", ChildState.RUNNING, 0, None),
        ("worker-1", "/pool/worker-1", ChildState.RUNNING, 0, None),
    ]


async def test_a_dynamic_child_is_supervised_like_any_other() -> None:
    log: list[str] = []
    async with open_supervisor([]) as pool:
        worker = probe(log, "worker")
        await pool.start_child(worker)
        await worker.ref.tell("crash")
        assert await worker.ref.ask("back?") == "back?"
        [info] = await pool.children()
    assert info.restarts == 1
    assert isinstance(info.last_error, Boom)
    assert info.state is ChildState.RUNNING


async def test_start_child_refuses_a_name_that_is_taken_and_the_supervisor_lives_on() -> None:
    log: list[str] = []
    async with open_supervisor([probe(log, "worker")]) as pool:
        with pytest.raises(ValueError, match="already has a child 'worker'"):
            await pool.start_child(probe(log, "worker"))
        assert [info.name for info in await pool.children()] == ["worker"]


async def test_stop_child_drains_the_child_and_forgets_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    handled: list[int] = []

    class Slow(Actor):
        async def handle(self, message: Any) -> None:
            await trio.sleep(1)
            handled.append(message)

    worker = ChildSpec("worker", Slow, shutdown=10)
    async with open_supervisor([]) as pool:
        await pool.start_child(worker)
        for n in range(3):
            await worker.ref.tell(n)
        await pool.stop_child("worker")
        assert handled == [0, 1, 2]
        assert await pool.children() == []
        with pytest.raises(ActorStopped):
            await worker.ref.tell(4)


async def test_stop_child_of_an_unknown_name_raises_child_not_found() -> None:
    async with open_supervisor([], name="pool") as pool:
        with pytest.raises(ChildNotFound, match=r"/pool has no child named 'ghost'") as info:
            await pool.stop_child("ghost")
    assert isinstance(info.value, LookupError)
    assert info.value.name == "ghost"


async def test_a_spec_stopped_for_good_cannot_be_started_again() -> None:
    log: list[str] = []
    worker = probe(log, "worker")
    async with open_supervisor([]) as pool:
        await pool.start_child(worker)
        await pool.stop_child("worker")
        with pytest.raises(ValueError, match="stopped for good"):
            await pool.start_child(worker)
        await pool.start_child(probe(log, "worker"))  # a fresh spec may reuse the name
        assert [info.name for info in await pool.children()] == ["worker"]


async def test_dynamic_children_stop_before_the_static_ones_at_exit() -> None:
    log: list[str] = []
    async with open_supervisor([probe(log, "static")]) as pool:
        await pool.start_child(probe(log, "dynamic-1"))
        await pool.start_child(probe(log, "dynamic-2"))
        del log[:]
    assert log == ["stop dynamic-2", "stop dynamic-1", "stop static"]


async def test_children_can_be_added_to_a_nested_supervisor() -> None:
    log: list[str] = []
    workers = supervisor_spec("workers", [])
    async with open_supervisor([workers], name="oncue") as root:
        ref = await SupervisorRef(workers.ref).start_child(probe(log, "worker-3"))
        assert ref.path == "/oncue/workers/worker-3"
        [info] = await root.children()
        assert info.path == "/oncue/workers"


async def test_dynamic_children_of_a_restarted_supervisor_are_stopped_for_good(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    static = probe(log, "static")
    workers = supervisor_spec("workers", [static], max_restarts=0)
    async with open_supervisor([workers]):
        dynamic = probe(log, "dynamic")
        await SupervisorRef(workers.ref).start_child(dynamic)
        await static.ref.tell("crash")  # workers gives up; the root restarts it
        assert await static.ref.ask("back?") == "back?"
        infos = await SupervisorRef(workers.ref).children()
        assert [info.name for info in infos] == ["static"]
        with trio.fail_after(1), pytest.raises(ActorStopped):
            await dynamic.ref.ask("anyone?")


async def test_a_static_child_stopped_for_good_stays_stopped_when_its_supervisor_restarts(
    autojump_clock: trio.testing.MockClock,
) -> None:
    log: list[str] = []
    kept, dropped = probe(log, "kept"), probe(log, "dropped")
    workers = supervisor_spec("workers", [kept, dropped], max_restarts=0)
    async with open_supervisor([workers], max_restarts=1) as root:
        await SupervisorRef(workers.ref).stop_child("dropped")
        await kept.ref.tell("crash")  # workers gives up; the root restarts it
        assert await kept.ref.ask("back?") == "back?"
        await trio.testing.wait_all_tasks_blocked()
        assert log == ["start kept", "start dropped", "stop dropped", "stop kept", "start kept"]
        [info] = await root.children()
        assert info.restarts == 1
        assert info.state is ChildState.RUNNING
