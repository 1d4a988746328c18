"""The engine's public API: submit, read, wait, cancel, retry, list, stats, events, resize."""

from __future__ import annotations

import gc

import pytest
import trio

from oncue.actors import (
    EngineClosed,
    EventsDropped,
    InvalidField,
    MailboxFull,
    Progress,
    QueueFull,
    Submission,
    TaskAlreadyFinished,
    TaskNotFailed,
    TaskNotFinished,
    TaskNotFound,
    TaskState,
    UnknownTaskType,
    open_engine,
)


async def test_submit_then_wait_returns_the_result(registry) -> None:
    async with open_engine(registry=registry, workers=2) as engine:
        task = await engine.submit("double", 21)
        assert task.state is TaskState.PENDING
        assert task.number == 1
        with trio.fail_after(5):
            done = await engine.wait(task.id)
    assert done.state is TaskState.COMPLETED
    assert done.result == 42
    assert done.attempts == 1
    assert str(done.worker).startswith("worker-")
    assert [step.state for step in done.history] == ["pending", "running", "completed"]
    assert done.started_at is not None
    assert done.finished_at is not None


async def test_the_decorated_handler_itself_can_be_submitted(registry) -> None:
    @registry.task("shout")
    async def shout(ctx, payload):
        return payload.upper()

    async with open_engine(registry=registry, workers=1) as engine:
        task = await engine.submit(shout, "hi")
        assert (await engine.wait(task.id)).result == "HI"


async def test_priority_order_then_fifo_with_one_worker(registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        await engine.pause()
        await engine.submit("record", "low-1", priority="low")
        await engine.submit("record", "normal-1")
        await engine.submit("record", "critical-1", priority="critical")
        await engine.submit("record", "low-2", priority=0)
        await engine.submit("record", "high-1", priority="high")
        await engine.submit("record", "normal-2", priority="normal")
        await engine.submit("record", "custom-10", priority=10)
        await engine.resume()
        await engine.wait_idle()
    assert registry.ran == [
        "custom-10",
        "critical-1",
        "high-1",
        "normal-1",
        "normal-2",
        "low-1",
        "low-2",
    ]


async def test_queue_full_is_immediate_and_batches_are_all_or_nothing(registry) -> None:
    async with open_engine(registry=registry, workers=1, queue_size=3) as engine:
        await engine.pause()
        await engine.submit("record", 1)
        await engine.submit("record", 2)
        with pytest.raises(QueueFull, match="2 of 3"):
            await engine.submit_many([Submission("record", 3), Submission("record", 4)])
        assert (await engine.stats()).queue_length == 2
        await engine.submit("record", 3)
        with pytest.raises(QueueFull):
            await engine.submit("record", 4)
        await engine.resume()
        await engine.wait_idle()
        await engine.submit("record", 5)  # room again once tasks finish
        await engine.wait_idle()
    assert registry.ran == [1, 2, 3, 5]


async def test_unknown_type_names_the_known_ones(registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        with pytest.raises(UnknownTaskType, match=r"known types: .*double.*echo"):
            await engine.submit("nope", 1)


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"priority": "urgent"}, "priority"),
        ({"priority": True}, "priority"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": -1}, "timeout"),
        ({"max_retries": -2}, "max_retries"),
        ({"delay": -5}, "delay"),
        ({"delay": 1, "run_at": 5.0}, "delay or run_at"),
        ({"key": ""}, "key"),
    ],
)
async def test_bad_options_name_the_field(registry, options, field) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        with pytest.raises(ValueError, match=field):
            await engine.submit("echo", None, **options)
        assert (await engine.stats()).by_state["pending"] == 0


async def test_idempotency_key_returns_the_existing_task(registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        first = await engine.submit("record", "once", key="order-7")
        again = await engine.submit("record", "twice", key="order-7")
        admitted = await engine.admit(
            [Submission("record", "x", key="k2"), Submission("record", "y", key="k2")]
        )
        await engine.wait_idle()
    assert again.id == first.id
    assert [a.created for a in admitted] == [True, False]
    assert admitted[0].task.id == admitted[1].task.id
    assert registry.ran == ["once", "x"]


async def test_get_by_id_or_number_and_not_found(registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        task = await engine.submit("echo", {"a": 1})
        assert (await engine.get(task.id)).payload == {"a": 1}
        assert (await engine.get(task.number)).id == task.id
        with pytest.raises(TaskNotFound, match="'missing'"):
            await engine.get("missing")
        with pytest.raises(TaskNotFound):
            await engine.wait("missing")


async def test_a_wait_is_bounded_by_the_callers_cancel_scope(autojump_clock, registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        task = await engine.submit("gate", 1)
        with pytest.raises(trio.TooSlowError), trio.fail_after(3):
            await engine.wait(task.id)
        assert trio.current_time() == pytest.approx(3)
        registry.gate.set()
        assert (await engine.wait(task.id)).result == 1


async def test_cancel_pending_and_cancel_finished(registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        await engine.pause()
        task = await engine.submit("record", "never")
        cancelled = await engine.cancel(task.id)
        assert cancelled.state is TaskState.CANCELLED
        await engine.resume()
        done = await engine.submit("record", "done")
        await engine.wait(done.id)
        with pytest.raises(TaskAlreadyFinished, match="it is completed"):
            await engine.cancel(done.id)
        await engine.wait_idle()
    assert registry.ran == ["done"]


async def test_cancel_interrupts_a_running_task(registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        task = await engine.submit("gate", "x")
        while (await engine.get(task.id)).state is not TaskState.RUNNING:
            await trio.testing.wait_all_tasks_blocked()
        await engine.cancel(task.id)
        finished = await engine.wait(task.id)
        after = await engine.submit("double", 2)  # the worker is free again
        assert (await engine.wait(after.id)).result == 4
    assert finished.state is TaskState.CANCELLED
    assert finished.result is None


async def test_delete_forgets_finished_tasks_only(registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        await engine.pause()
        pending = await engine.submit("echo", 1)
        with pytest.raises(TaskNotFinished, match="cancel it first"):
            await engine.delete(pending.id)
        await engine.resume()
        await engine.wait(pending.id)
        await engine.delete(pending.id)
        with pytest.raises(TaskNotFound):
            await engine.get(pending.id)
        assert (await engine.stats()).successful == 0


async def test_failed_tasks_are_kept_and_can_be_retried(registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        task = await engine.submit("fail", {"message": "boom"})
        failed = await engine.wait(task.id)
        assert failed.state is TaskState.FAILED
        assert failed.error is not None
        assert failed.error.type == "RuntimeError"
        assert failed.error.message == "boom"
        assert "Traceback" in failed.error.traceback
        again = await engine.retry(task.id)
        assert again.state is TaskState.PENDING
        assert (await engine.wait(task.id)).attempts == 1
        with pytest.raises(TaskNotFailed):
            await engine.retry((await engine.submit("echo", 1)).id)
        await engine.wait_idle()


async def test_list_filters_newest_first_with_a_cursor(registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        for number in range(5):
            await engine.submit("echo", number)
        await engine.submit("fail", None)
        await engine.wait_idle()
        first = await engine.list(limit=4)
        assert [task.payload for task in first.tasks] == [None, 4, 3, 2]
        second = await engine.list(limit=4, cursor=first.next_cursor)
        assert [task.payload for task in second.tasks] == [1, 0]
        assert second.next_cursor is None
        failed = await engine.list(state="failed")
        assert [task.type for task in failed.tasks] == ["fail"]
        assert len((await engine.list(type="echo")).tasks) == 5
        with pytest.raises(ValueError, match="limit"):
            await engine.list(limit=0)
        with pytest.raises(ValueError, match="cursor"):
            await engine.list(cursor="abc")
        with pytest.raises(ValueError, match="state must be one of"):
            await engine.list(state="sleeping")


async def test_stats_count_by_state_and_type(registry) -> None:
    async with open_engine(registry=registry, workers=2) as engine:
        await engine.submit_many([Submission("double", n) for n in range(5)])
        await engine.submit("fail", None)
        await engine.wait_idle()
        stats = await engine.stats()
    assert stats.total_processed == 6
    assert stats.successful == 5
    assert stats.failed == 1
    assert stats.queue_length == 0
    assert stats.by_type == {"double": {"completed": 5}, "fail": {"failed": 1}}
    assert stats.workers_busy == 0
    assert stats.workers_idle == 2


async def test_ten_thousand_tasks_through_eight_workers_all_correct(registry) -> None:
    async with open_engine(registry=registry, workers=8, queue_size=10_000) as engine:
        tasks = await engine.submit_many([Submission("double", n) for n in range(10_000)])
        await engine.wait_idle()
        stats = await engine.stats()
        finished = []
        cursor = None
        while True:
            page = await engine.list(limit=1000, cursor=cursor)
            finished.extend(page.tasks)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        workers = await engine.workers()
    assert stats.successful == 10_000
    assert {task.id for task in finished} == {task.id for task in tasks}
    assert all(task.state is TaskState.COMPLETED for task in finished)
    assert all(task.result == task.payload * 2 for task in finished)
    assert all(task.attempts == 1 for task in finished)
    assert sum(worker.tasks_done for worker in workers) == 10_000


async def test_sync_handlers_run_in_a_thread_and_report_progress(registry) -> None:
    import threading

    main_thread = threading.get_ident()

    @registry.task("blocking")
    def blocking(ctx, payload):
        ctx.report_progress(0.5, "half")
        return threading.get_ident() != main_thread

    async with open_engine(registry=registry, workers=1) as engine:
        task = await engine.submit("blocking", None)
        with trio.fail_after(10):
            done = await engine.wait(task.id)
    assert done.result is True
    assert done.progress == Progress(0.5, "half")


async def test_events_stream_transitions_and_drop_slow_subscribers(registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        seen = []
        async with trio.open_nursery() as nursery:

            async def follow() -> None:
                async for event in engine.events():
                    seen.append((event.state.value, event.task_id))
                    if event.state is TaskState.COMPLETED:
                        return

            nursery.start_soon(follow)
            await trio.testing.wait_all_tasks_blocked()
            task = await engine.submit("echo", 1)
        assert seen == [("pending", task.id), ("running", task.id), ("completed", task.id)]

        release = trio.Event()
        outcome = []

        async def follow_slowly() -> None:
            try:
                async for event in engine.events(capacity=2):
                    outcome.append(event.state)
                    await release.wait()
            except EventsDropped as dropped:
                outcome.append(dropped)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(follow_slowly)
            await trio.testing.wait_all_tasks_blocked()
            await engine.submit_many([Submission("echo", n) for n in range(5)])
            await engine.wait_idle()
            release.set()
        assert outcome[0] is TaskState.PENDING
        assert len(outcome) == 4  # the first, the two it had room for, then the drop
        assert isinstance(outcome[-1], EventsDropped)


async def test_resize_grows_and_shrinks_the_pool(registry) -> None:
    async with open_engine(registry=registry, workers=2) as engine:
        await engine.resize(5)
        assert [w.name for w in await engine.workers()] == [f"worker-{n}" for n in range(1, 6)]
        await engine.resize(1)
        assert [w.name for w in await engine.workers()] == ["worker-1"]
        tasks = await engine.submit_many([Submission("double", n) for n in range(20)])
        await engine.wait_idle()
        states = {(await engine.get(t.id)).state for t in tasks}
        assert states == {TaskState.COMPLETED}
        with pytest.raises(ValueError, match="workers"):
            await engine.resize(-1)


async def test_resize_to_zero_holds_work_until_workers_return(registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        await engine.resize(0)
        task = await engine.submit("double", 4)
        await trio.testing.wait_all_tasks_blocked()
        assert (await engine.get(task.id)).state is TaskState.PENDING
        await engine.resize(1)
        assert (await engine.wait(task.id)).result == 8


async def test_workers_report_their_current_task(registry) -> None:
    async with open_engine(registry=registry, workers=2) as engine:
        task = await engine.submit("gate", 1)
        while (await engine.get(task.id)).state is not TaskState.RUNNING:
            await trio.testing.wait_all_tasks_blocked()
        workers = {w.name: w for w in await engine.workers()}
        busy = [w for w in workers.values() if w.state == "busy"]
        assert [w.current_task for w in busy] == [task.id]
        registry.gate.set()
        await engine.wait_idle()
        assert sum(w.tasks_done for w in await engine.workers()) == 1


async def test_submit_after_shutdown_is_refused(registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        await engine.shutdown(grace=1)
        assert engine.closing
        with pytest.raises(EngineClosed):
            await engine.submit("echo", 1)


async def test_find_a_task_by_its_idempotency_key(registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        task = await engine.submit("echo", 1, key="invoice-9")
        assert (await engine.get_by_key("invoice-9")).id == task.id
        with pytest.raises(TaskNotFound, match="'nope'"):
            await engine.get_by_key("nope")


async def test_owners_are_recorded_and_filter_listings(registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        mine = await engine.submit_many([Submission("echo", 1, owner="alice")])
        await engine.submit_many([Submission("echo", 2, owner="bob")])
        await engine.wait_idle()
        page = await engine.list(owner="alice")
    assert [task.id for task in page.tasks] == [mine[0].id]
    assert page.tasks[0].owner == "alice"


@pytest.mark.parametrize(
    ("options", "field"),
    [({"priority": 2**63}, "priority"), ({"timeout": "soon"}, "timeout"), ({"delay": -1}, "delay")],
)
async def test_invalid_options_carry_the_field_name(registry, options, field) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        with pytest.raises(InvalidField) as raised:
            await engine.submit("echo", None, **options)
    assert raised.value.field == field


async def test_the_readme_task_types_run(registry) -> None:
    async with open_engine(registry=registry, workers=2) as engine:
        email = await engine.submit("email", {"to": "a@example.com", "subject": "hi"})
        process = await engine.submit("process", {"items": [1, 2, 3]})
        assert (await engine.wait(email.id)).result == {
            "sent": False,
            "dry_run": True,
            "to": ["a@example.com"],
        }
        assert (await engine.wait(process.id)).result == {"processed": True, "items": 1}


async def test_timed_out_waits_do_not_pile_up_in_the_store(autojump_clock, registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        task = await engine.submit("gate", 1)
        for _ in range(50):
            with pytest.raises(trio.TooSlowError), trio.fail_after(1):
                await engine.wait(task.id)
        waiting = engine.wait(task.id)  # one more, still waiting when the task finishes
        async with trio.open_nursery() as nursery:
            results = []

            async def wait_for_it() -> None:
                results.append(await waiting)

            nursery.start_soon(wait_for_it)
            await trio.testing.wait_all_tasks_blocked()
            store = engine._store._mailbox  # the store's mailbox: how many asks it holds
            assert len(store._in_flight) <= 2  # this wait, and at most one stale one
            registry.gate.set()
        assert results[0].result == 1


async def test_cpu_bound_handlers_run_in_another_process(registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        task = await engine.submit("compute", {"n": 10_000}, timeout=60)
        bad = await engine.submit("compute", {"n": "lots"}, timeout=60)
        assert (await engine.wait(task.id)).result == {"n": 10_000, "primes": 1229}
        failed = await engine.wait(bad.id)
    assert failed.state is TaskState.FAILED
    assert failed.attempts == 1  # Fatal, raised in the worker process, is not retried
    assert failed.error is not None
    assert "compute needs an int n" in failed.error.message


async def test_retry_follows_the_admission_rules_and_starts_clean(registry) -> None:
    async with open_engine(registry=registry, workers=1, queue_size=1) as engine:
        failed = await engine.wait((await engine.submit("fail", {"message": "x"})).id)
        await engine.pause()
        blocker = await engine.submit("echo", 1)
        with pytest.raises(QueueFull):
            await engine.retry(failed.id)  # the queue is full: it stays failed
        assert (await engine.get(failed.id)).state is TaskState.FAILED
        await engine.cancel(blocker.id)
        async with engine.events() as events:
            again = await engine.retry(failed.id)
            first = await events.__anext__()
        assert (first.task_id, first.state) == (failed.id, TaskState.PENDING)
        assert again.error is None
        assert again.worker is None
        assert again.attempts == 0
        await engine.resume()
        await engine.wait(failed.id)
        await engine.shutdown(grace=1)
        with pytest.raises(EngineClosed):
            await engine.retry(failed.id)


async def test_submit_nowait_hands_tasks_over_without_waiting(registry) -> None:
    async with open_engine(registry=registry, workers=2) as engine:
        tasks = [engine.submit_nowait("double", n, priority="high") for n in range(100)]
        done = [await engine.wait(task.id) for task in tasks]
        with pytest.raises(UnknownTaskType):
            engine.submit_nowait("nope")
        with pytest.raises(InvalidField):
            engine.submit_nowait("echo", timeout=-1)
    assert [task.result for task in done] == [n * 2 for n in range(100)]
    assert {task.priority for task in done} == {2}


async def test_submit_nowait_keeps_order_across_the_batches_it_fills(registry) -> None:
    async with open_engine(registry=registry, workers=1, queue_size=5000) as engine:
        await engine.pause()
        ids = []
        for number in range(1500):  # more than one SubmitNowait holds, taken at checkpoints
            ids.append(engine.submit_nowait("echo", number).id)
            if number in (300, 400):
                await trio.lowlevel.checkpoint()
        await engine.stats()  # committed once this is answered, so list() sees them all
        first = await engine.list(limit=1000)
        rest = await engine.list(limit=1000, cursor=first.next_cursor)
        await engine.resume()
    tasks = list(reversed(first.tasks + rest.tasks))  # oldest first
    assert [task.id for task in tasks] == ids
    assert [task.payload for task in tasks] == list(range(1500))


async def test_submit_nowait_would_block_on_a_full_mailbox_and_never_drops(registry) -> None:
    async with open_engine(registry=registry, workers=1, queue_size=50_000) as engine:
        await engine.pause()
        ids = []
        with pytest.raises(MailboxFull):  # a trio.WouldBlock
            for number in range(100_000):  # no checkpoint: the handed-over backlog fills up
                ids.append(engine.submit_nowait("echo", number).id)
        stats = await engine.stats()  # asked after them all: the store has them all now
        await engine.resume()
    assert 0 < len(ids) < 50_000
    assert stats.by_state["pending"] == len(ids)  # every one handed over, none dropped
    assert stats.by_state["failed"] == 0


async def test_submit_nowait_past_the_queue_size_raises_queue_full_and_never_drops(
    registry,
) -> None:
    async with open_engine(registry=registry, workers=1, queue_size=5) as engine:
        await engine.pause()
        ids = []
        with pytest.raises(QueueFull):  # a trio.WouldBlock too
            for number in range(100):
                ids.append(engine.submit_nowait("echo", number).id)
        stats = await engine.stats()
        await engine.resume()
    assert len(ids) == 5
    assert stats.by_state["pending"] == 5  # what queue_size admits, waiting (paused)
    assert stats.by_state["failed"] == 0


async def test_submit_nowait_after_shutdown_is_refused(registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        await engine.shutdown(grace=1)
        with pytest.raises(EngineClosed):
            engine.submit_nowait("echo", 1)


async def test_the_gc_threshold_is_raised_while_engines_run_then_restored(registry) -> None:
    before = gc.get_threshold()
    async with open_engine(registry=registry, workers=1, gc_threshold=before[0] + 1000):
        async with open_engine(registry=registry, workers=1, gc_threshold=None):
            assert gc.get_threshold()[0] == before[0] + 1000
        assert gc.get_threshold() == (before[0] + 1000, *before[1:])
    assert gc.get_threshold() == before
    with pytest.raises(ValueError, match="gc_threshold"):
        async with open_engine(registry=registry, gc_threshold=0):
            pass
