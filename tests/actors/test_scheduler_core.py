"""The scheduler's core, driven by plain calls: no trio, no actor, clocks moved by hand."""

from __future__ import annotations

import ast
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from oncue.actors import TaskError
from oncue.actors.cores.claims import CLAIM_POLL, Claims
from oncue.actors.cores.recording import PURGE_BATCH, START_DELAY
from oncue.actors.cores.scheduler_core import SchedulerCore
from oncue.actors.cores.settlement import Requeue, RetryLater, settle
from oncue.actors.messages import (
    Claim,
    Completed,
    Failed,
    Interrupt,
    Job,
    JobFailed,
    JobInterrupted,
    JobReturned,
    JobSucceeded,
    JobTimedOut,
    Purge,
    Requeued,
    Retrying,
    Started,
)
from oncue.actors.registry import RetryPolicy

ACTORS = Path(__file__).resolve().parents[2] / "actors"
CORE = (
    "scheduler_core",
    "queues",
    "holdings",
    "durations",
    "dispatch",
    "roster",
    "settlement",
    "claims",
    "recording",
    "linger",
)
WALL = 1_000_000.0  # the wall clock when the scheduler's clock reads 0
ERROR = TaskError("RuntimeError", "boom")


def job(
    task_id: str, priority: int = 1, max_retries: int = 3, task_type: str = "t", attempts: int = 0
) -> Job:
    return Job(task_id, task_type, None, priority, 5.0, attempts, max_retries, None)


class Clocks:
    """The two clocks a core reads, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL + self.now


def make_core(**options: Any) -> tuple[SchedulerCore[str], Clocks]:
    clocks = Clocks()
    core: SchedulerCore[str] = SchedulerCore(
        clock=clocks.clock,
        wall=clocks.wall,
        policy=lambda task_type: RetryPolicy(base=1.0, cap=8.0),
        rng=random.Random(1),
        **options,
    )
    return core, clocks


def dispatch_to(core: SchedulerCore[str], worker: str, waiter: str) -> list[Job]:
    """``worker`` asks; return what the turn hands it."""
    assert core.request_work(worker, waiter, [], fresh=False)
    core.turn()
    replies, core.outbox.replies = core.outbox.replies, []
    assert [answer for answer, _ in replies] == [waiter]
    jobs = replies[0][1]
    assert jobs is not None
    return jobs


# -- imports ---------------------------------------------------------------------------------------

BLOCKED = """
import importlib, importlib.util, sys, types
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.startswith(("trio.", "oncue.actors.backends")):
            raise ImportError(f"the scheduler's core imported {name}")
        return None
sys.meta_path.insert(0, Refuse())
# errors.py (TaskError's task.py imports it) subclasses trio.WouldBlock, and nothing else of
# trio may be touched: a stand-in with that one class, so any other use fails here
trio = types.ModuleType("trio")
trio.WouldBlock = type("WouldBlock", (Exception,), {})
sys.modules["trio"] = trio
package = types.ModuleType("oncue.actors")  # not its __init__, which starts the whole engine
package.__path__ = [sys.argv[1]]
sys.modules["oncue.actors"] = package
for name in sys.argv[2:]:
    importlib.import_module(f"oncue.actors.cores.{name}")
print(sorted(name for name in sys.modules if name.startswith("oncue.actors.")))
"""


def test_the_core_modules_import_neither_trio_nor_a_backend() -> None:
    result = subprocess.run(
        [sys.executable, "-c", BLOCKED, str(ACTORS), *CORE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    loaded = set(ast.literal_eval(result.stdout))
    # the core, and the values it speaks in: no mailbox, no actor, no registry, no backend
    values = ("messages", "messages_store", "messages_scheduler", "task", "errors")
    values += ("cores", "cores.rules", "cores.jsontext")
    assert loaded == {f"oncue.actors.cores.{name}" for name in CORE} | {
        f"oncue.actors.{name}" for name in values
    }


@pytest.mark.parametrize("name", CORE)
def test_no_core_module_imports_trio_even_deferred(name: str) -> None:
    tree = ast.parse((ACTORS / "cores" / f"{name}.py").read_text())
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    ] + [
        f"{'.' * node.level}{node.module or ''}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    ]
    assert not [module for module in imported if module.split(".")[0] == "trio"]
    assert not [module for module in imported if "backends" in module or "mailbox" in module]


# -- dispatch --------------------------------------------------------------------------------------


def test_fast_jobs_go_out_in_batches_of_a_fair_share_and_unknown_ones_alone() -> None:
    core, _ = make_core()
    core.tasks_ready([job(f"{n}", task_type="fast") for n in range(10)])
    assert len(dispatch_to(core, "w1", "ask-1")) == 1  # never measured: alone
    core.durations.measure("fast", 0.0, 0.00001)
    assert core.request_work("w2", "ask-2", [], fresh=False)
    assert core.request_work("w3", "ask-3", [], fresh=False)
    core.turn()
    assert [len(jobs or []) for _, jobs in core.outbox.replies] == [5, 4]  # ceil(9 / 2), rest


def test_a_lone_start_waits_for_company_but_an_outcome_goes_at_once() -> None:
    core, _ = make_core()
    core.tasks_ready([job("a")])
    (a,) = dispatch_to(core, "w1", "ask-1")
    assert core.take_changes() is None  # a Started alone may wait START_DELAY
    assert core.next_deadline() == START_DELAY
    core.request_work("w1", "ask-2", [JobSucceeded(a, WALL, WALL + 0.5, 42)], fresh=False)
    changes = core.take_changes()
    assert changes == [Started(["a"], "w1", WALL), Completed("a", 42, WALL + 0.5)]
    assert core.next_deadline() == float("inf")


def test_a_worker_restarting_loses_its_batch_with_the_attempt_counted() -> None:
    core, _ = make_core()
    core.tasks_ready([job("a")])
    dispatch_to(core, "w1", "ask-1")
    core.request_work("w1", "ask-2", [], fresh=True)
    assert core.take_changes(force=True) == [
        Started(["a"], "w1", WALL),
        Requeued("a", True, WALL),
    ]
    assert core.queues.queued["a"].attempts == 1
    assert not core.holdings


def test_a_task_cancelled_while_a_worker_holds_it_is_never_run_again() -> None:
    core, _ = make_core()
    a, b = job("a"), job("b")
    core.tasks_ready([a, b])
    core.durations.measure("t", 0.0, 0.00001)  # fast: both go out in one batch
    assert dispatch_to(core, "w1", "ask-1") == [a, b]
    core.task_cancelled("a")  # the store has cancelled it; the worker is told
    assert core.outbox.interrupts == [("w1", Interrupt("a", "cancelled"))]
    core.request_work("w1", "ask-2", [JobFailed(a, 1.0, 2.0, ERROR), JobReturned(b)], fresh=False)
    assert list(core.queues.queued) == ["b"]  # a is neither retried nor re-queued
    assert core.take_changes() == [Started(["a", "b"], "w1", WALL), Requeued("b", False, WALL)]


# -- settlement ------------------------------------------------------------------------------------


def decide(outcome: Any) -> Any:
    return settle(outcome, lambda: WALL, lambda _: RetryPolicy(base=1.0, cap=8.0), random.Random(1))


def test_a_failure_is_retried_with_backoff_until_max_retries_then_failed() -> None:
    retried = decide(JobFailed(job("a", max_retries=1), WALL, WALL + 1, ERROR))
    assert isinstance(retried, RetryLater)
    assert 0 <= retried.delay <= 1.0  # full jitter under the first ceiling
    assert retried.job.attempts == 1
    assert retried.transition == Retrying("a", ERROR, WALL + 1 + retried.delay, WALL + 1)
    last = decide(JobTimedOut(retried.job, WALL + 5, ERROR))
    assert last == Failed("a", ERROR, WALL + 5)


def test_fatal_fails_at_once_and_retry_delay_is_honoured() -> None:
    assert decide(JobFailed(job("a"), WALL, WALL, ERROR, fatal=True)) == Failed("a", ERROR, WALL)
    later = decide(JobFailed(job("a"), WALL, WALL, ERROR, retry_delay=30.0))
    assert isinstance(later, RetryLater)
    assert later.delay == 30.0


def test_interrupted_counts_the_attempt_and_returned_does_not() -> None:
    interrupted = decide(JobInterrupted(job("a"), WALL + 2))
    assert interrupted == Requeue(job("a")._replace(attempts=1), Requeued("a", True, WALL + 2))
    assert decide(JobReturned(job("a"))) == Requeue(job("a"), Requeued("a", False, WALL))


def test_a_retry_waits_on_the_timer_heap_until_due() -> None:
    core, clocks = make_core()
    core.tasks_ready([job("a")])
    (a,) = dispatch_to(core, "w1", "ask-1")
    outcome = JobFailed(a, WALL, WALL, ERROR, retry_delay=3.0)
    core.request_work("w1", "ask-2", [outcome], fresh=False)
    assert core.take_changes() == [
        Started(["a"], "w1", WALL),
        Retrying("a", ERROR, WALL + 3.0, WALL),
    ]
    assert core.next_deadline() == 3.0
    clocks.now = 2.9
    core.turn()
    assert core.outbox.replies == []
    clocks.now = 3.0
    core.turn()
    assert core.outbox.replies == [("ask-2", [a._replace(attempts=1, run_at=WALL + 3.0)])]


# -- control, retention, shared stores -------------------------------------------------------------


def test_draining_answers_idle_workers_interrupts_the_busy_and_waits_for_them() -> None:
    core, _ = make_core()
    core.tasks_ready([job("a"), job("b")])
    (a,) = dispatch_to(core, "w1", "ask-1")
    core.request_work("w2", "ask-2", [], fresh=False)
    core.set_paused(True)
    core.turn()
    assert core.outbox.replies == []  # paused: b stays queued
    assert core.drain(interrupt=True) == 1
    assert core.outbox.replies == [("ask-2", None)]
    assert core.outbox.interrupts == [("w1", Interrupt(None, "shutdown"))]
    assert core.wait_drained("drained")
    assert not core.request_work("w1", "ask-3", [JobInterrupted(a, WALL)], fresh=False)
    core.turn()
    assert core.outbox.replies[-1] == ("drained", None)
    assert list(core.queues.queued) == ["b"]  # a goes back to pending, not on the queue


def test_retention_purges_every_tenth_of_it_what_finished_before_the_cutoff() -> None:
    core, clocks = make_core(retention=100.0)
    core.start()
    assert core.next_deadline() == 10.0
    clocks.now = 10.0
    core.turn()
    assert core.outbox.to_store == [Purge(WALL + 10.0 - 100.0, PURGE_BATCH)]
    assert core.next_deadline() == 20.0


def test_a_shared_store_is_claimed_from_when_the_buffer_is_half_empty() -> None:
    claims = Claims(shared=True)
    assert claims.room(prefetch=8, buffered=5, accepting=True) == 0  # more than half full
    assert claims.room(prefetch=8, buffered=4, accepting=True) == 4
    assert claims.room(prefetch=8, buffered=0, accepting=False) == 0  # paused or draining
    assert claims.due(4, now=0.0) == 4
    assert claims.room(prefetch=8, buffered=0, accepting=True) == 0  # one claim at a time
    claims.answered(got=1, limit=4)  # not full: wait for the poll
    assert claims.next_claim(4) == CLAIM_POLL
    assert claims.due(4, now=0.5) == 0
    claims.wake()  # a notice: at once
    assert claims.next_claim(4) == float("-inf")


def test_a_core_on_a_shared_store_claims_for_its_workers_and_names_its_node() -> None:
    core, _ = make_core(node="n1")
    assert core.request_work("w1", "ask-1", [], fresh=True)
    core.turn()
    assert core.outbox.to_store == [Claim(1, CLAIM_POLL)]  # one a worker until measured
    core.outbox.to_store.clear()
    core.claimed([job("a")], limit=1)
    core.turn()
    assert core.outbox.replies == [("ask-1", [job("a")])]
    changes = core.take_changes(force=True)
    assert changes == [Started(["a"], "n1/w1", WALL)]
    core.set_paused(True)
    assert core.outbox.to_store == [Claim(0, CLAIM_POLL)]  # keep nothing for us


def test_load_says_who_is_busy_with_what_and_how_much_each_finished() -> None:
    core, _ = make_core()
    core.tasks_ready([job("a"), job("b")])
    (a,) = dispatch_to(core, "w1", "ask-1")
    core.request_work("w1", "ask-2", [JobSucceeded(a, WALL, WALL, None)], fresh=False)
    core.request_work("w2", "ask-3", [], fresh=False)
    core.turn()  # w1 gets b; w2 waits
    load = core.load()
    assert (load.busy, load.idle, load.paused) == (1, 1, False)
    assert load.current == {"w1": "b"}
    assert load.done == {"w1": 1}


# -- from main (issue 17): asks nobody waits for, poison tasks ---------------------------------


def test_work_is_never_handed_to_an_ask_its_worker_gave_up() -> None:
    """A restarted scheduler finds the asks of the workers stopped with it in its mailbox
    (they outlive restarts): handing them work held it for nobody, while the node renewed its
    leases (issue 17 item 4, seen after a Redis restart)."""
    gone = {"stale-ask"}  # the old worker-1 was cancelled while it asked
    core, _ = make_core(gone=lambda waiter: waiter in gone)
    assert core.request_work("worker-1", "stale-ask", [], fresh=False)
    core.tasks_ready([job("a")])
    core.turn()
    assert core.outbox.replies == []
    assert list(core.queues.queued) == ["a"]  # still queued for a live worker
    assert core.request_work("worker-1", "live-ask", [], fresh=True)
    core.turn()
    assert core.outbox.replies == [("live-ask", [job("a")])]


def test_a_fresh_ask_voids_the_old_incarnation_s_pending_ask() -> None:
    core, _ = make_core()
    assert core.request_work("worker-1", "old-ask", [], fresh=False)
    assert core.request_work("worker-1", "new-ask", [], fresh=True)
    core.tasks_ready([job("a")])
    core.turn()
    assert core.outbox.replies == [("new-ask", [job("a")])]


def test_a_task_its_node_died_running_too_often_ends_failed_at_recovery() -> None:
    core, _ = make_core()
    core.recover([(job("poison", max_retries=1, attempts=3), True), (job("ok", attempts=1), True)])
    changes = core.take_changes(force=True)
    assert changes is not None
    failed, requeued = changes
    assert isinstance(failed, Failed)
    assert (failed.id, failed.error.type) == ("poison", "NodeLost")
    assert isinstance(requeued, Requeued)
    assert requeued.id == "ok"
    assert list(core.queues.queued) == ["ok"]


def test_on_a_durable_store_work_waits_until_its_start_is_recorded() -> None:
    """An attempt is counted before it runs (issue 17): the Started goes out this turn, and
    the worker gets its work once the store says the Record that carried it is committed."""
    core, _ = make_core(confirm_starts=True)
    core.tasks_ready([job("a")])
    assert core.request_work("w1", "ask-1", [], fresh=False)
    core.turn()
    assert core.outbox.replies == []
    changes = core.take_changes()  # at once, not START_DELAY later
    assert changes is not None
    assert [type(change) for change in changes] == [Started]
    token = core.confirmations.token()
    assert token is not None
    core.starts_recorded(object())  # an earlier scheduler's Record: answers nobody here
    assert core.outbox.replies == []
    core.starts_recorded(token)
    assert core.outbox.replies == [("ask-1", [job("a")])]
    assert core.confirmations.token() is None  # nothing more waits


def test_a_cancel_before_the_start_is_recorded_drops_the_task_without_an_interrupt() -> None:
    """The answer waits for its Started's commit; a cancel meanwhile takes the task out of it.
    No interrupt: one heard by the worker after that answer would skip the task were it
    handed to it again later (a shared store's claim), leaving it running for nobody."""
    core, _ = make_core(confirm_starts=True)
    core.tasks_ready([job("a"), job("b")])
    core.durations.measure("t", 0.0, 0.00001)  # fast: both go out in one batch
    assert core.request_work("w1", "ask-1", [], fresh=False)
    core.turn()
    core.take_changes()
    token = core.confirmations.token()
    core.task_cancelled("a")
    assert core.outbox.interrupts == []
    core.starts_recorded(token)
    assert core.outbox.replies == [("ask-1", [job("b")])]


def test_a_claim_s_poison_tasks_are_failed_and_the_rest_run() -> None:
    """Pending with more starts than max_retries + 1, each lost with its node: failed as
    NodeLost, not run (a shared store's claim; issue 17). A retrying task is not one."""
    from oncue.actors.cores.record import TaskRecord
    from oncue.actors.cores.settlement import ended_as_poison, poisoned
    from oncue.actors.task import TaskState

    def record(id_: str, state: TaskState, attempts: int) -> TaskRecord:
        return TaskRecord(id_, 1, "echo", None, 1, state, attempts, 1, 5.0, 0.0)

    spent = record("spent", TaskState.PENDING, 3)  # max_retries 1: 3 starts, all lost
    once_more = record("once-more", TaskState.PENDING, 2)  # its last attempt's node died
    retrying = record("retrying", TaskState.RETRYING, 3)
    assert poisoned([spent, once_more, retrying]) == ([once_more, retrying], [spent])
    ended = ended_as_poison(spent, WALL)
    assert ended.state is TaskState.FAILED
    assert ended.error is not None
    assert ended.error.type == "NodeLost"
    assert ended.finished_at == WALL
    assert spent.state is TaskState.PENDING  # a copy: if its end is not written, it runs
