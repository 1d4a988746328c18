"""Embed oncue in a plain trio program: register handlers, submit, wait, watch, shut down.

Run: python examples/embed_in_trio.py
"""

from __future__ import annotations

import trio

from oncue.actors import Registry, Submission, TaskContext, TaskState, open_engine

registry = Registry()  # starts with the built-ins: echo, sleep, compute, process, fail, ...


@registry.task("thumbnail", timeout=10, max_retries=2, priority="high")
async def thumbnail(ctx: TaskContext, payload: dict[str, int]) -> dict[str, int]:
    """Pretend to resize an image, reporting progress as it goes."""
    for step in range(4):
        await trio.sleep(0.01)
        ctx.report_progress((step + 1) / 4)
    return {"width": payload["width"] // 4, "height": payload["height"] // 4}


@registry.task("checksum")
def checksum(ctx: TaskContext, payload: str) -> int:
    """A plain function: oncue runs it in a worker thread, never on the event loop."""
    return sum(payload.encode()) % 65521


async def watch(engine, done: trio.Event) -> None:
    """Print every transition, the way a live dashboard would follow the engine."""
    async with engine.events() as events:
        done.set()
        async for event in events:
            print(f"  event: {event.type:<9} {event.state.value:<9} on {event.worker or '-'}")


async def main() -> None:
    async with open_engine(registry=registry, workers=4, queue_size=10_000) as engine:
        async with trio.open_nursery() as nursery:
            subscribed = trio.Event()
            nursery.start_soon(watch, engine, subscribed)
            await subscribed.wait()

            task = await engine.submit("thumbnail", {"width": 4000, "height": 3000})
            with trio.fail_after(30):
                done = await engine.wait(task.id)
            print(f"thumbnail -> {done.result} after {done.attempts} attempt(s)")
            nursery.cancel_scope.cancel()

        # A batch is all or nothing; the handler can be named or passed itself.
        batch = await engine.submit_many(
            [Submission("checksum", text) for text in ("oncue", "trio", "actors")]
        )
        await engine.wait_idle()
        sums = [(await engine.get(t.id)).result for t in batch]
        print(f"checksums -> {sums}")

        stats = await engine.stats()
        print(f"stats: {stats.successful} completed, {stats.failed} failed")
        assert stats.successful == 4
        assert done.state is TaskState.COMPLETED
    print("engine stopped cleanly")


if __name__ == "__main__":
    trio.run(main)
