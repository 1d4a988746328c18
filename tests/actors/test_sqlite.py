"""The SQLite backend's commits: one statement when every record's row is at hand, the
transaction of several statements otherwise; the same rows either way."""

from __future__ import annotations

from typing import Any

from oncue.actors.backends.sqlite import SqliteBackend
from oncue.actors.backends.sqlite_sql import CHUNK
from oncue.actors.cores.record import TaskRecord
from oncue.actors.task import TaskState


def record(number: int, *, text: bool = True) -> TaskRecord:
    """A pending task; ``text``: its payload's JSON text is at hand, as admission leaves it."""
    return TaskRecord(
        id=f"task-{number}",
        number=number,
        type="t",
        payload={"n": number},
        priority=1,
        state=TaskState.PENDING,
        attempts=0,
        max_retries=0,
        timeout=1.0,
        created_at=0.0,
        key=f"key-{number}",
        payload_json=f'{{"n": {number}}}' if text else None,
    )


def finish(task: TaskRecord) -> None:
    task.move(TaskState.COMPLETED, 2.0)
    task.result = [task.number, "é"]
    task.finished_at = 2.0


async def statements(backend: SqliteBackend, changed: list[TaskRecord], deleted: Any) -> list[str]:
    """Commit, and return the statements the connection ran for it."""
    ran: list[str] = []
    backend._db.set_trace_callback(ran.append)
    await backend.commit(changed, deleted)
    backend._db.set_trace_callback(None)
    return ran


async def test_records_with_their_rows_at_hand_commit_as_one_statement(tmp_path) -> None:
    backend = SqliteBackend(tmp_path / "x.db")
    await backend.open()
    stored = [record(number) for number in range(10, 20)]
    assert len(await statements(backend, stored, [])) == 1  # new ones only
    await backend.commit([], [stored[0].id])  # deleted meanwhile: an update would miss it
    for task in stored:
        finish(task)
    stored[1].payload = "changed in memory: a stored payload stays"
    new = [record(number) for number in range(20, 25)]
    ran = await statements(backend, [*stored, *new], [])
    assert len(ran) == 1
    assert ran[0].startswith("INSERT INTO tasks")
    await backend.close()
    await backend.open()  # a new process: everything from the file
    found = {task.number: task for task in await backend.query(None, None, 100, None)}
    assert sorted(found) == list(range(10, 25))
    assert {found[n].state for n in range(10, 20)} == {TaskState.COMPLETED}
    assert found[10].result == [10, "é"]  # written whole again
    assert found[10].key == "key-10"
    assert found[11].payload == {"n": 11}
    assert found[11].history == stored[1].history
    assert found[24].state is TaskState.PENDING
    await backend.close()


async def test_other_commits_are_one_transaction_of_several_statements(tmp_path) -> None:
    backend = SqliteBackend(tmp_path / "x.db")
    await backend.open()
    read_back = [record(number, text=False) for number in range(1, 4)]
    await backend.commit(read_back, [])
    finish(read_back[0])
    # A record read back from the file (no payload text): its changes alone, no re-encoding.
    ran = await statements(backend, [read_back[0]], [])
    assert ran[0] == "BEGIN IMMEDIATE"
    assert ran[-1] == "COMMIT"
    assert not any(statement.startswith("INSERT") for statement in ran)
    assert (await statements(backend, [], []))[0] == "BEGIN IMMEDIATE"  # nothing: still valid
    # Deletions, and more records than one statement holds, take the transaction too.
    assert (await statements(backend, [], [read_back[1].id]))[0] == "BEGIN IMMEDIATE"
    many = [record(number) for number in range(100, 101 + CHUNK)]
    assert (await statements(backend, many, []))[0] == "BEGIN IMMEDIATE"
    found = {task.number for task in await backend.query(None, None, 1000, None)}
    assert found == {1, 3, *range(100, 101 + CHUNK)}
    assert (await backend.get(read_back[0].id)).state is TaskState.COMPLETED
    await backend.close()
