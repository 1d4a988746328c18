"""Retries with backoff, timeouts, Fatal errors and the dead-letter set, on a mock clock.

The engine's timers run on trio's clock, so this scenario (which would take minutes of
backoff in real time) runs in a blink under trio.testing.MockClock.

Run: python examples/retries_and_timeouts.py
"""

from __future__ import annotations

import itertools

import trio
import trio.testing

from oncue.actors import Fatal, Registry, Retry, TaskContext, open_engine

registry = Registry()
attempts: dict[str, list[float]] = {}


@registry.task("flaky_api", max_retries=5, retry_base=2.0, retry_cap=60.0)
async def flaky_api(ctx: TaskContext, payload: int) -> str:
    """Fails on its first `payload` attempts, then succeeds."""
    attempts.setdefault("flaky_api", []).append(trio.current_time())
    if ctx.attempt <= payload:
        raise ConnectionError(f"upstream unavailable (attempt {ctx.attempt})")
    return "ok"


@registry.task("rate_limited", max_retries=3)
async def rate_limited(ctx: TaskContext, payload: None) -> str:
    """Asks for its own delay, as an API's Retry-After would."""
    if ctx.attempt == 1:
        raise Retry("429 from upstream", delay=30)
    return "sent"


@registry.task("hangs", timeout=2.0, max_retries=1)
async def hangs(ctx: TaskContext, payload: None) -> None:
    """Never returns: each attempt is cancelled at its timeout."""
    await trio.sleep_forever()


@registry.task("bad_input")
async def bad_input(ctx: TaskContext, payload: None) -> None:
    """A failure no retry can fix."""
    raise Fatal("payload is missing 'account'")


async def main() -> None:
    async with open_engine(registry=registry, workers=2, seed=7) as engine:
        start = trio.current_time()
        flaky = await engine.submit("flaky_api", 3)
        limited = await engine.submit("rate_limited")
        hung = await engine.submit("hangs")
        fatal = await engine.submit("bad_input")
        await engine.wait_idle()

        for task_id in (flaky.id, limited.id, hung.id, fatal.id):
            task = await engine.get(task_id)
            error = f" ({task.error.type}: {task.error.message})" if task.error else ""
            print(f"{task.type:<13} {task.state.value:<9} attempts={task.attempts}{error}")

        gaps = [round(b - a, 2) for a, b in itertools.pairwise(attempts["flaky_api"])]
        print(f"flaky_api waited {gaps} s between attempts (full jitter, base 2 s)")
        print(f"all of it took {trio.current_time() - start:.1f} s of mock time")

        dead = await engine.list(state="failed")
        print(f"dead letters: {sorted(task.type for task in dead.tasks)}")
        retried = await engine.retry(fatal.id)  # replay one after fixing the cause
        print(f"replayed {retried.type}: now {retried.state.value}")
        await engine.wait_idle()


if __name__ == "__main__":
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0))
