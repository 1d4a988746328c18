"""How the store takes its batches from its mailbox: all that waits, up to MAX_BATCH; on a
durable store, after a batch that answered asks, once as many asks came back (store.py).
"""

from __future__ import annotations

import trio
import trio.lowlevel

from ..runtime.mailbox import Envelope, Mailbox

MAX_BATCH = 4096  # messages per transaction: bounds the latency one batch adds


def drain(mailbox: Mailbox, batch: list[Envelope]) -> int:
    """Add what ``mailbox`` holds now to ``batch`` (up to MAX_BATCH, no yield); the asks added."""
    asks = 0
    while len(batch) < MAX_BATCH:
        try:
            envelope = mailbox.receive_nowait()
        except (trio.WouldBlock, trio.EndOfChannel):
            break
        batch.append(envelope)
        asks += envelope.is_ask
    return asks


async def after_answers(mailbox: Mailbox, answered: int) -> list[Envelope]:
    """The next batch after one that answered ``answered`` asks on a durable store: taken once
    as many asks have come in, or two passes of the run loop after the answers (trio runs a
    pass's tasks in either order, so a caller answered in one pass has run by the end of the
    next). A producer awaiting each submit() asks again within its step, so its next task
    joins the starts and outcomes that came in meanwhile in one commit (docs/stores.md, "One
    commit a task"); if it came first this pass, the batch goes at once. Empty: the mailbox
    closed with nothing in it.
    """
    await trio.lowlevel.checkpoint()  # the second pass: the answered run before or after us
    batch: list[Envelope] = []
    if drain(mailbox, batch) >= answered:
        return batch
    if batch:  # some of the answered run after us this pass: take what they send next pass
        await trio.lowlevel.checkpoint()
        drain(mailbox, batch)
        return batch
    try:  # nothing yet: the first message wakes us in the next pass, or later
        batch.append(await mailbox.receive())
    except trio.EndOfChannel:
        return batch
    drain(mailbox, batch)
    return batch
