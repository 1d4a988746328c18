"""Tenancy: a token's subject owns the tasks it submits; others' tasks do not exist for it.

The engine records `Submission(owner=...)` on the task and filters `list(owner=...)`; this
module decides, per request, which owner that is and whether a task is visible. A task of
another tenant answers 404 exactly as a missing one does, so ids do not leak. Idempotency keys
are scoped to their owner (stored as `owner` + SEPARATOR + key, shown without the prefix), so
one tenant's key never returns another's task. With auth off there are no tenants.
"""

from __future__ import annotations

from oncue.actors import Task, TaskNotFound

from .auth import ANONYMOUS, Principal, principal
from .errors import ApiError

SEPARATOR = "\x1f"  # the ASCII unit separator: not in any key a client can send


def owner_of(who: Principal) -> str | None:
    """Who owns what `who` submits: its token's subject, or None when auth is off."""
    return None if who is ANONYMOUS else who.subject


def current_owner() -> str | None:
    """The owner of what the current request submits (see `owner_of`)."""
    return owner_of(principal())


def owner_filter() -> str | None:
    """The owner to list for: the caller's, unless it is an admin (or auth is off)."""
    return None if principal().admin else current_owner()


def scoped_key(key: str | None, owner: str | None) -> str | None:
    """The idempotency key as stored: prefixed by its `owner` when there is one."""
    if key is None or owner is None:
        return key
    if SEPARATOR in key:
        raise ApiError(422, "invalid_field", "key must not hold the character U+001F", field="key")
    return f"{owner}{SEPARATOR}{key}"


def shown_key(key: str | None) -> str | None:
    """A stored key as its owner sent it."""
    return None if key is None else key.rpartition(SEPARATOR)[2]


def visible(task: Task, requested: object) -> Task:
    """`task` if the caller may see it; else TaskNotFound for `requested` (a 404, like a miss)."""
    if principal().admin or task.owner == current_owner():
        return task
    raise TaskNotFound(requested)
