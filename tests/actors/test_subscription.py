"""EventStream: a commit's events arrive as one list and come out one at a time, or as many
as asked for by ready(), in order, a list split across calls where it must be."""

from __future__ import annotations

from oncue.actors import Registry, Submission, TaskContext, TaskState, open_engine

registry = Registry()


@registry.task("noop")
async def noop(ctx: TaskContext, x: int) -> int:
    return x


async def test_events_come_out_in_order_however_they_are_taken(autojump_clock) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        await engine.pause()  # only the submit's commit: five pending events, one list
        async with engine.events() as stream:
            tasks = await engine.submit_many(Submission("noop", n) for n in range(5))
            first = await stream.__anext__()
            taken = [first, *stream.ready(2), *stream.ready(10)]
        assert [event.task_id for event in taken] == [task.id for task in tasks]
        assert {event.state for event in taken} == {TaskState.PENDING}
        assert stream.ready(10) == []


async def test_ready_splits_a_commit_s_list_and_keeps_the_rest_for_next_time(
    autojump_clock,
) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        await engine.pause()
        async with engine.events() as stream:
            tasks = await engine.submit_many(Submission("noop", n) for n in range(5))
            two, rest = stream.ready(2), stream.ready(10)
        assert [len(two), len(rest)] == [2, 3]
        assert [event.task_id for event in two + rest] == [task.id for task in tasks]
