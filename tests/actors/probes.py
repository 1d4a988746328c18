"""Actors the supervisor tests share (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

from oncue.actors import Actor, Context


class Boom(Exception):
    pass


class Probe(Actor):
    """Logs ``start <name>`` and ``stop <name>``; "crash" raises Boom, "exit" returns."""

    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def run(self, context: Context) -> None:
        self.log.append(f"start {context.name}")
        try:
            context.started()
            async for envelope in context.mailbox:
                if envelope.message == "crash":
                    raise Boom(f"{context.name} crashed")
                if envelope.message == "exit":
                    return
                envelope.reply(envelope.message)
        finally:
            self.log.append(f"stop {context.name}")
