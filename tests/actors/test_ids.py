"""Task ids: 24 hex characters, in order within a process, a prefix of its own per process."""

from __future__ import annotations

import os
import re

from oncue.actors.cores.ids import _ids, new_task_id


def test_ids_are_24_hex_characters_in_order() -> None:
    ids = [new_task_id() for _ in range(1000)]
    assert all(re.fullmatch(r"[0-9a-f]{24}", task_id) for task_id in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert len({task_id[:16] for task_id in ids}) == 1  # one process, one prefix


def test_a_renewal_draws_a_new_prefix_and_starts_counting_again() -> None:
    before = new_task_id()
    _ids.renew()
    after = new_task_id()
    assert after[:16] != before[:16]
    assert after[16:] == "00000000"


def test_a_forked_child_draws_ids_of_its_own() -> None:
    read, write = os.pipe()
    parent = new_task_id()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child
        os.write(write, new_task_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(child, 0)
    with os.fdopen(read) as pipe:
        forked = pipe.read()
    assert forked[:16] != parent[:16]
    assert new_task_id()[:16] == parent[:16]  # the parent goes on with its own
