"""What a whole supervision tree shares: its event emitter and the mailboxes of its live actors."""

from __future__ import annotations

import functools
from collections.abc import Callable

import attrs

from ..errors import ActorStopped
from .events import LifecycleEvent
from .mailbox import Mailbox


@attrs.define(eq=False)
class System:
    """What a whole tree shares: its event emitter and the mailboxes of its live actors.

    Mailboxes are filed under the path of the supervisor that adopted them, so an actor stopped
    for good takes the mailboxes of its whole subtree with it.
    """

    emit: Callable[[LifecycleEvent], None]
    _mailboxes: dict[str, set[Mailbox]] = attrs.field(factory=dict)  # by supervisor path

    def adopt(self, mailbox: Mailbox, supervisor: str) -> None:
        self._mailboxes.setdefault(supervisor, set()).add(mailbox)

    def stop_for_good(self, mailbox: Mailbox, supervisor: str) -> None:
        """Close ``mailbox`` and every mailbox below it; their queued asks fail ActorStopped."""
        self._mailboxes.get(supervisor, set()).discard(mailbox)
        mailbox.close()
        mailbox.fail_queued()
        for child in self._mailboxes.pop(mailbox.path, set()):
            self.stop_for_good(child, mailbox.path)

    def close_all(self) -> None:
        """When the tree exits: nothing will read these mailboxes again, nor answer what they hold.

        Each child failed its held asks when it exited; the root's are failed here, after the
        block was cancelled, so code inside the block sees the cancellation, not an error.
        """
        for mailboxes in self._mailboxes.values():
            for mailbox in mailboxes:
                mailbox.close()
                mailbox.fail_in_flight(
                    functools.partial(ActorStopped, mailbox.path, "it stopped first")
                )
                mailbox.fail_queued()
