"""The exception tree: four roots, so an ``except`` catches what it means to."""

from __future__ import annotations

import pytest
import trio

from oncue.actors import (
    ActorError,
    ActorStopped,
    BackendError,
    BackendFull,
    BackendUnavailable,
    BadQuery,
    Fatal,
    MailboxFull,
    OncueError,
    QueueFull,
    Retry,
    StoreUnavailable,
    SupervisorGaveUp,
    TaskNotFound,
    TaskSignal,
)

ROOTS = (OncueError, ActorError, TaskSignal, BackendError)


@pytest.mark.parametrize(
    ("error", "root"),
    [
        (TaskNotFound("x"), OncueError),
        (QueueFull(10, 10, 1), OncueError),
        (StoreUnavailable(BackendFull("disk full")), OncueError),
        (ActorStopped("/root/store"), ActorError),
        (MailboxFull("/root/store"), ActorError),
        (SupervisorGaveUp("/root", 3, 5.0, None), ActorError),
        (Retry(), TaskSignal),
        (Fatal("no"), TaskSignal),
        (BackendUnavailable("down"), BackendError),
        (BackendFull("full"), BackendError),
        (BadQuery("out of range"), BackendError),
    ],
)
def test_each_error_has_exactly_one_root(error: Exception, root: type[Exception]) -> None:
    assert [each for each in ROOTS if isinstance(error, each)] == [root]


def test_task_code_that_catches_oncue_errors_does_not_swallow_its_own_retry() -> None:
    with pytest.raises(Retry):
        try:
            raise Retry(delay=1)
        except OncueError:  # what a handler around an engine call would write
            pytest.fail("Retry was caught as an OncueError")


def test_the_would_block_forms_are_trio_would_block() -> None:
    assert isinstance(QueueFull(10, 10, 1), trio.WouldBlock)
    assert isinstance(MailboxFull("/root/store"), trio.WouldBlock)
    assert isinstance(BadQuery("x"), ValueError)  # a bad value, answered 422 over HTTP
