"""Timeouts, retries with backoff, and delayed tasks, all on trio's mock clock."""

from __future__ import annotations

import itertools
import random

import pytest
import trio

from oncue.actors import RetryPolicy, TaskState, open_engine


async def test_a_hung_attempt_times_out_and_frees_the_worker(autojump_clock, registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        start = trio.current_time()
        task = await engine.submit("hang", None)
        done = await engine.wait(task.id)
        elapsed = trio.current_time() - start
        after = await engine.submit("double", 1)
        assert (await engine.wait(after.id)).result == 2
    assert done.state is TaskState.FAILED
    assert done.error is not None
    assert done.error.type == "TaskTimeout"
    assert "timed out after 2s" in done.error.message
    assert 2.0 <= elapsed < 2.1


async def test_a_timed_out_attempt_follows_the_retry_policy(autojump_clock, registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        task = await engine.submit("hang", None, timeout=1, max_retries=2)
        done = await engine.wait(task.id)
    assert done.state is TaskState.FAILED
    assert done.attempts == 3
    assert [step.state for step in done.history].count("retrying") == 2


async def test_per_task_timeout_overrides_the_handler(autojump_clock, registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        quick = await engine.submit("slow", 5, timeout=1, max_retries=0)
        patient = await engine.submit("slow", 5, timeout=10)
        assert (await engine.wait(quick.id)).state is TaskState.FAILED
        assert (await engine.wait(patient.id)).result == 5


async def test_backoff_follows_full_jitter_on_the_mock_clock(autojump_clock, registry) -> None:
    seed = 1234
    async with open_engine(registry=registry, workers=1, seed=seed) as engine:
        task = await engine.submit("flaky", {"fail_times": 3})
        done = await engine.wait(task.id)
    assert done.state is TaskState.COMPLETED
    assert done.result == 4
    assert done.retry_count == 3
    expected_rng = random.Random(seed)
    policy = RetryPolicy(base=1.0, cap=8.0)
    gaps = [later - earlier for earlier, later in itertools.pairwise(registry.times)]
    expected = [expected_rng.uniform(0, policy.ceiling(attempt)) for attempt in (1, 2, 3)]
    assert gaps == pytest.approx(expected, abs=1e-6)
    assert all(gap <= policy.ceiling(n) for n, gap in enumerate(gaps, start=1))


def test_backoff_ceiling_doubles_up_to_the_cap() -> None:
    policy = RetryPolicy(base=0.5, cap=10.0)
    assert [policy.ceiling(n) for n in range(1, 8)] == [0.5, 1, 2, 4, 8, 10, 10]
    assert policy.ceiling(10_000) == 10.0
    with pytest.raises(ValueError, match="base"):
        RetryPolicy(base=0, cap=1)


async def test_max_retries_minus_one_retries_until_success(autojump_clock, registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        task = await engine.submit("flaky", {"fail_times": 12}, max_retries=-1)
        done = await engine.wait(task.id)
    assert done.state is TaskState.COMPLETED
    assert done.attempts == 13


async def test_retries_stop_at_max_retries(autojump_clock, registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        task = await engine.submit("flaky", {"fail_times": 10}, max_retries=2)
        done = await engine.wait(task.id)
    assert done.state is TaskState.FAILED
    assert done.attempts == 3
    assert done.error is not None
    assert done.error.message == "attempt 3 fails"


async def test_fatal_errors_skip_retries(autojump_clock, registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        task = await engine.submit("fatal", None, max_retries=5)
        done = await engine.wait(task.id)
    assert done.state is TaskState.FAILED
    assert done.attempts == 1
    assert done.error is not None
    assert done.error.type == "Fatal"


async def test_retry_with_a_delay_waits_that_long(autojump_clock, registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        task = await engine.submit("retry_later", None)
        done = await engine.wait(task.id)
    assert done.result == "second time lucky"
    assert registry.times[1] - registry.times[0] == pytest.approx(30, abs=0.01)


async def test_delayed_tasks_run_after_their_delay_in_order(autojump_clock, registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        start = trio.current_time()
        late = await engine.submit("record", "late", delay=60)
        early = await engine.submit("record", "early", delay=10)
        now = await engine.submit("record", "now")
        await engine.wait(now.id)
        assert (await engine.get(late.id)).state is TaskState.PENDING
        await engine.wait(early.id)
        # run_at is wall-clock (it must survive restarts); the mock clock only approximates it
        assert trio.current_time() - start == pytest.approx(10, abs=0.05)
        await engine.wait(late.id)
        assert trio.current_time() - start == pytest.approx(60, abs=0.05)
    assert registry.ran == ["now", "early", "late"]


async def test_a_delayed_task_can_be_cancelled_before_it_runs(autojump_clock, registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        task = await engine.submit("record", "never", delay=30)
        await engine.cancel(task.id)
        await trio.sleep(60)
        await engine.wait_idle()
    assert registry.ran == []


async def test_a_retrying_task_can_be_cancelled(autojump_clock, registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        async with engine.events() as events:
            task = await engine.submit("retry_later", None)
            async for event in events:
                if event.state is TaskState.RETRYING:
                    break
        cancelled = await engine.cancel(task.id)
        await trio.sleep(60)
    assert cancelled.state is TaskState.CANCELLED
    assert len(registry.times) == 1


async def test_paused_engine_holds_due_timers_until_resumed(autojump_clock, registry) -> None:
    async with open_engine(registry=registry, workers=1) as engine:
        await engine.pause()
        task = await engine.submit("record", "x", delay=5)
        await trio.sleep(10)
        assert (await engine.get(task.id)).state is TaskState.PENDING
        assert (await engine.stats()).paused
        await engine.resume()
        await engine.wait(task.id)
    assert registry.ran == ["x"]
