"""The store's rules (store_core.py, ownership.py), driven as plain calls: no trio, no backend."""

from __future__ import annotations

import sys

import pytest

from oncue.actors.cores.ids import new_task_id
from oncue.actors.cores.ownership import COUNT_EVERY, LocalOwnership, SharedOwnership
from oncue.actors.cores.record import TaskRecord
from oncue.actors.cores.store_core import SHRINK_ABOVE, StoreCore
from oncue.actors.errors import (
    EngineClosed,
    QueueFull,
    TaskAlreadyFinished,
    TaskNotFailed,
    TaskNotFinished,
)
from oncue.actors.messages import (
    Claim,
    Claimed,
    Completed,
    Failed,
    Job,
    Requeued,
    Retrying,
    Started,
)
from oncue.actors.task import TaskError, TaskState

ERROR = TaskError("Boom", "boom")


class Clock:
    """The shared ownership's clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def new(key: str | None = None, *, run_at: float | None = None, max_retries: int = 1) -> TaskRecord:
    """A task as admission hands it to the store: pending, with an id, not yet numbered."""
    pending, payload = TaskState.PENDING, {"x": 1}
    return TaskRecord(
        new_task_id(), 0, "echo", payload, 1, pending, 0, max_retries, 5.0, 0.0, run_at, key
    )


def local_core(queue_size: int = 100, last_number: int = 0) -> StoreCore:
    core = StoreCore(LocalOwnership(last_number), queue_size)
    core.begin(False)
    return core


def running(core: StoreCore, count: int = 1) -> list[TaskRecord]:
    """Submit ``count`` tasks and start them on worker-1; a fresh batch after."""
    admitted = core.submit([new() for _ in range(count)], {}, 1.0)
    ids = [each.task.id for each in admitted]
    core.record([Started(ids, "worker-1", 2.0)])
    core.begin(False)
    return [core.unfinished[task_id] for task_id in ids]


# -- admission ------------------------------------------------------------------------------------


def test_a_submit_records_pending_tasks_numbered_from_the_last_and_ready_to_run() -> None:
    core = local_core(last_number=41)
    admitted = core.submit([new(), new()], {}, 10.0)
    assert [each.task.number for each in admitted] == [42, 43]
    assert all(each.created and each.task.state is TaskState.PENDING for each in admitted)
    batch = core.batch
    assert [job.id for job in batch.ready] == [each.task.id for each in admitted]
    assert set(batch.changed) == {each.task.id for each in admitted}
    assert core.counts["echo", TaskState.PENDING] == 2


def test_a_submit_past_the_queue_size_adds_nothing() -> None:
    core = local_core(queue_size=2)
    core.submit([new()], {}, 1.0)
    with pytest.raises(QueueFull, match="1 of 2 unfinished tasks, cannot add 2"):
        core.submit([new(), new()], {}, 1.0)
    assert len(core.unfinished) == 1
    assert len(core.batch.changed) == 1


def test_after_close_admission_a_submit_is_refused() -> None:
    core = local_core()
    core.submit([new()], {}, 1.0)
    assert core.close_admission() == 1
    with pytest.raises(EngineClosed):
        core.submit([new()], {}, 1.0)


def test_a_key_already_stored_answers_that_task_and_creates_nothing() -> None:
    core = local_core()
    (first,) = core.submit([new("k")], {}, 1.0)
    stored = core.known_key("k")
    assert stored is not None
    again = core.submit([new("k"), new("k2"), new("k2")], {"k": stored}, 2.0)
    assert [each.created for each in again] == [False, True, False]
    assert again[0].task.id == first.task.id
    assert again[1].task.id == again[2].task.id  # one key twice in one submit: one task


def test_a_submit_nowait_past_the_queue_size_is_recorded_failed_not_dropped() -> None:
    core = local_core(queue_size=1)
    refused = core.submit_nowait([new(), new()], 1.0)
    assert len(refused) == 1
    assert refused[0].state is TaskState.FAILED
    assert refused[0].error is not None
    assert refused[0].error.type == "QueueFull"
    assert len(core.batch.ready) == 1
    assert core.batch.finished == refused


# -- what the scheduler reports -----------------------------------------------------------------


def test_a_task_submitted_with_headers_carries_them_to_its_snapshot_and_job() -> None:
    core = local_core()
    headers = {"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}
    with_headers = new()
    with_headers.headers = headers
    admitted = core.submit([with_headers, new()], {}, 1.0)
    assert [each.task.headers for each in admitted] == [headers, None]
    assert [job.headers for job in core.batch.ready] == [headers, None]


def test_a_task_runs_and_completes_and_its_waiters_are_named() -> None:
    core = local_core()
    (record,) = running(core)
    assert (record.state, record.attempts, record.worker) == (TaskState.RUNNING, 1, "worker-1")
    core.record([Completed(record.id, 42, 3.0)])
    assert record.state is TaskState.COMPLETED
    assert (record.result, record.finished_at) == (42, 3.0)
    assert core.batch.finished == [record]
    assert record.id not in core.unfinished
    assert core.counts["echo", TaskState.COMPLETED] == 1
    assert core.counts["echo", TaskState.RUNNING] == 0


def test_retrying_failed_and_requeued_move_a_running_task() -> None:
    core = local_core()
    first, second, third = running(core, 3)
    core.record(
        [
            Retrying(first.id, ERROR, 9.0, 3.0),
            Failed(second.id, ERROR, 3.0),
            Requeued(third.id, False, 3.0),
        ]
    )
    assert (first.state, first.run_at, first.error) == (TaskState.RETRYING, 9.0, ERROR)
    assert second.state is TaskState.FAILED
    assert (third.state, third.attempts) == (TaskState.PENDING, 0)  # never began: not counted
    assert core.batch.finished == [second]


def test_what_the_scheduler_reports_about_a_cancelled_task_is_ignored() -> None:
    core = local_core()
    (record,) = running(core)
    core.cancel(record, 3.0)
    core.record([Completed(record.id, 1, 4.0)])
    assert record.state is TaskState.CANCELLED
    assert core.batch.cancelled == [record.id]


def test_progress_is_kept_for_an_unfinished_task_only() -> None:
    core = local_core()
    (record,) = running(core)
    core.progress(record.id, 0.5, "half")
    assert record.progress is not None
    assert record.progress.fraction == 0.5
    core.progress("no-such-task", 0.5, "")
    assert list(core.batch.changed) == [record.id]


# -- cancel, delete, retry ----------------------------------------------------------------------


def test_cancel_delete_and_retry_check_the_state_they_need() -> None:
    core = local_core()
    (record,) = running(core)
    with pytest.raises(TaskNotFinished):
        core.delete(record)
    with pytest.raises(TaskNotFailed):
        core.retry(record, 3.0)
    core.record([Failed(record.id, ERROR, 3.0)])
    with pytest.raises(TaskAlreadyFinished):
        core.cancel(record, 4.0)
    task = core.retry(record, 5.0)
    assert (task.state, task.attempts, task.error, task.worker) == (
        TaskState.PENDING,
        0,
        None,
        None,
    )
    assert core.batch.ready[-1].id == record.id
    core.cancel(record, 6.0)
    core.delete(record)
    assert core.batch.deleted == [record.id]
    assert record.id not in core.batch.changed
    assert core.counts["echo", TaskState.CANCELLED] == 0


def test_events_are_built_only_while_somebody_subscribes() -> None:
    core = local_core()
    core.submit([new()], {}, 1.0)
    assert core.batch.events is None
    batch = core.begin(True)
    (admitted,) = core.submit([new()], {}, 1.0)
    assert batch.events is not None
    assert [(e.task_id, e.state) for e in batch.events] == [(admitted.task.id, TaskState.PENDING)]


# -- shared ownership ---------------------------------------------------------------------------


def shared_core(
    queue_size: int = 100, clock: Clock | None = None
) -> tuple[StoreCore, SharedOwnership]:
    ownership = SharedOwnership("node-a", clock or Clock())
    core = StoreCore(ownership, queue_size)
    core.begin(False)
    return core, ownership


def test_a_shared_store_reads_its_count_when_old_and_numbers_when_short() -> None:
    clock = Clock()
    core, ownership = shared_core(queue_size=10, clock=clock)
    reads = ownership.admission_reads(2)
    assert reads is not None
    assert reads.count
    assert reads.creating == 2
    ownership.counted(9, now=0.0)
    ownership.reserved(range(100, 110))
    clock.now = COUNT_EVERY / 2
    assert ownership.admission_reads(2) is None
    with pytest.raises(QueueFull, match="9 of 10"):
        core.submit([new(), new()], {}, 1.0)
    (admitted,) = core.submit([new()], {}, 1.0)
    assert admitted.task.number == 100
    clock.now = COUNT_EVERY
    reads = ownership.admission_reads(1)
    assert reads is not None
    assert reads.count


def test_a_shared_store_keeps_a_new_task_only_while_its_scheduler_has_room() -> None:
    core, ownership = shared_core()
    ownership.reserved(range(1, 10))
    told: list[Claimed] = []
    ownership.claim(Claim(3, 1.0), told.append)
    ownership.chores()  # the claim ran ...
    ownership.claimed(3, core.claimed([]))  # ... and got nothing: room for three
    ownership.counted(0, now=0.0)
    admitted = core.submit([new(), new(run_at=1e12)], {}, 1.0)
    kept, far = (core.batch.changed[each.task.id] for each in admitted)
    assert kept.node == "node-a"
    assert kept.id in core.unfinished
    assert far.node is None
    assert far.id not in core.unfinished
    assert [job.id for job in core.batch.ready] == [kept.id]
    chores = ownership.chores()
    assert chores is not None
    assert chores.wake


def test_a_shared_store_told_no_room_answers_a_pending_claim_empty() -> None:
    _, ownership = shared_core()
    told: list[Claimed] = []
    ownership.claim(Claim(5, 1.0), told.append)
    ownership.claim(Claim(0, 1.0), told.append)
    assert told == [Claimed([], 5)]
    chores = ownership.chores()
    assert chores is not None
    assert chores.claim is None


def test_a_retry_on_a_shared_store_is_anyones_to_claim() -> None:
    core, ownership = shared_core()
    ownership.counted(0, now=0.0)
    record = TaskRecord("t1", 1, "echo", None, 1, TaskState.FAILED, 1, 0, 5.0, 0.0)
    core.retry(record, 1.0)
    assert record.node is None
    assert record.id not in core.unfinished
    assert core.batch.ready == []
    chores = ownership.chores()
    assert chores is not None
    assert chores.wake


def test_a_task_that_failed_here_and_is_retried_in_the_same_batch_stays_ours_to_run() -> None:
    """Its record is still ours (node, lease): as anyone's it was held for nobody, its lease
    renewed for ever (found by the shared simulation, seed 714)."""
    core, ownership = shared_core()
    ownership.counted(0, now=0.0)
    claimed = TaskRecord("t1", 1, "echo", None, 1, TaskState.PENDING, 0, 0, 5.0, 0.0)
    claimed.node = "node-a"
    core.claimed([claimed])
    core.record([Started(["t1"], "node-a/worker-1", 1.0)])
    core.record([Failed("t1", ERROR, 2.0)])
    record = core.known("t1")
    assert record is not None
    core.retry(record, 3.0)
    assert record.state is TaskState.PENDING
    assert record.node == "node-a"
    assert "t1" in core.unfinished
    assert [job.id for job in core.batch.ready] == ["t1"]


def test_a_claim_that_takes_back_a_task_we_run_leaves_the_run_going() -> None:
    """Our lease lapsed unnoticed (restarts kept the renewals from going out), another node
    reaped it, and our claim took it back: our run goes on and its outcome counts; taken as
    pending, the outcome was ignored and nobody ran it again (the shared simulation, 903)."""
    core, _ = shared_core()
    running = TaskRecord("t1", 1, "echo", None, 1, TaskState.PENDING, 0, 0, 5.0, 0.0)
    core.claimed([running])
    core.record([Started(["t1"], "node-a/worker-1", 1.0)])
    reaped = TaskRecord("t1", 1, "echo", None, 1, TaskState.PENDING, 1, 0, 5.0, 0.0)
    assert core.claimed([reaped]) == []  # nothing more to run: it runs
    core.record([Completed("t1", 2, 2.0)])
    assert [record.id for record in core.batch.finished] == ["t1"]


def test_writes_lost_at_commit_are_forgotten_and_their_runs_interrupted() -> None:
    core, _ownership = shared_core()
    loaded = TaskRecord("t1", 1, "echo", None, 1, TaskState.RUNNING, 1, 0, 5.0, 0.0)
    core.claimed([loaded])
    core.record([Completed("t1", 1, 2.0)])
    assert core.lost(["t1"]) == {"t1"}
    assert core.batch.finished == []  # nobody is told it finished here
    core.cancelled_elsewhere(["t1"])  # already forgotten: nothing more to interrupt
    assert core.batch.cancelled == []
    assert core.dropped(["t1"]) == []


def test_the_unfinished_index_is_rebuilt_once_a_drain_leaves_it_far_below_its_peak() -> None:
    # A dict never shrinks its table: a drained backlog of a million would keep ~40 MB.
    count = 4 * SHRINK_ABOVE
    core = local_core(queue_size=count)
    records = running(core, count)
    grown = core.unfinished
    peak_size = sys.getsizeof(grown)
    core.record([Completed(record.id, None, 3.0) for record in records[:-10]])
    core.begin(False)
    assert core.unfinished is not grown
    assert sys.getsizeof(core.unfinished) < peak_size / 2
    assert list(core.unfinished.values()) == records[-10:]


def test_the_job_a_submit_makes_ready_is_the_record_s_whole_job() -> None:
    """create() builds the Job without its NamedTuple's __new__ (tuple_of): every field, in
    order, as Job(...) would (a field added to Job and not here fails this)."""
    core = local_core()
    core.submit([new()], {}, 1.0)
    (ready,) = core.batch.ready
    record = core.unfinished[ready.id]
    assert ready == record.job()
    assert len(ready) == len(Job._fields)
