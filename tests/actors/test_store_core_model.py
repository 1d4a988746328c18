"""The store's core against a small model (hypothesis state machine), and what it imports.

The machine plays the scheduler and the callers with plain calls: submit (with and without
keys, past the queue size), start, complete, fail (retry while attempts allow), requeue,
cancel, retry, delete, purge. After every step the core's records, counts and unfinished set
must agree with the model; at the end every task is run to its end, and every accepted task
must have ended exactly once per life (a retry starts a new one) unless cancelled or deleted.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from oncue.actors.cores.ids import new_task_id
from oncue.actors.cores.ownership import LocalOwnership, Ownership, SharedOwnership
from oncue.actors.cores.record import TaskRecord
from oncue.actors.cores.store_core import StoreCore
from oncue.actors.errors import QueueFull, TaskAlreadyFinished
from oncue.actors.messages import Claim, Claimed, Completed, Failed, Requeued, Retrying, Started
from oncue.actors.task import FINISHED, TaskError, TaskState

QUEUE_SIZE = 6
ERROR = TaskError("Boom", "boom")
ACTORS = Path(__file__).resolve().parents[2] / "actors"


class StoreModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.core = StoreCore(self.ownership(), QUEUE_SIZE)
        self.core.begin(False)
        self.now = 0.0
        self.records: dict[str, TaskRecord] = {}  # every task accepted and not deleted
        self.keys: dict[str, str] = {}  # key -> task id
        self.ends: Counter[str] = Counter()  # task id -> times it entered a finished state
        self.lives: Counter[str] = Counter()  # task id -> 1 + times it was retried
        self.life_starts: dict[str, int] = {}  # task id -> where its life starts in its history
        self.cancelled: set[str] = set()
        self.numbers: list[int] = []

    def ownership(self) -> Ownership:
        return LocalOwnership(0)

    def admits(self, creating: int) -> bool:
        unfinished = len(self.in_state(TaskState.PENDING, TaskState.RUNNING, TaskState.RETRYING))
        return unfinished + creating <= QUEUE_SIZE

    def created(self, count: int) -> None:
        """``count`` tasks were admitted (or retried)."""

    def retried(self, record: TaskRecord) -> None:
        """``record`` was retried."""

    def owned(self) -> set[str]:
        """The unfinished tasks this store runs (all of them, with a local ownership)."""
        return {i for i, r in self.records.items() if r.state not in FINISHED}

    def tick(self) -> float:
        self.now += 1.0
        return self.now

    def commit(self) -> None:
        """What the store actor does after a batch: count who finished; a new batch."""
        for record in self.core.batch.finished:
            self.ends[record.id] += 1
        self.core.begin(False)

    def in_state(self, *states: TaskState) -> list[TaskRecord]:
        return sorted(
            (r for r in self.records.values() if r.state in states), key=lambda r: r.number
        )

    # -- callers ---------------------------------------------------------------------------------

    @rule(
        count=st.integers(1, 3),
        keys=st.lists(st.sampled_from([None, "a", "b"]), min_size=3, max_size=3),
        max_retries=st.integers(-1, 2),
        priority=st.integers(-1, 2),
    )
    def submit(self, count: int, keys: list[str | None], max_retries: int, priority: int) -> None:
        pending, retries = TaskState.PENDING, max_retries
        tasks = [
            TaskRecord(
                new_task_id(), 0, "t", n, priority, pending, 0, retries, 5.0, 0.0, None, keys[n]
            )
            for n in range(count)
        ]
        existing = {k: self.records[i] for k, i in self.keys.items() if i in self.records}
        creating = sum(1 for t in tasks if t.key is None or t.key not in existing)
        admits = self.admits(creating)
        try:
            admitted = self.core.submit(tasks, existing, self.tick())
        except QueueFull:
            assert not admits
            return
        assert admits
        self.created(sum(1 for each in admitted if each.created))
        for task, each in zip(tasks, admitted, strict=True):
            if each.created:
                record = self.core.batch.changed[each.task.id]
                self.records[record.id] = record
                self.lives[record.id] = 1
                self.numbers.append(record.number)
                if task.key is not None:
                    self.keys[task.key] = record.id
            else:
                assert task.key is not None
                assert self.keys[task.key] == each.task.id
        self.commit()

    @precondition(lambda self: self.records)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        record = data.draw(st.sampled_from(sorted(self.records.values(), key=lambda r: r.id)))
        try:
            self.core.cancel(record, self.tick())
        except TaskAlreadyFinished:
            assert record.state in FINISHED
            return
        self.cancelled.add(record.id)
        assert self.core.batch.cancelled == [record.id]
        self.commit()

    @precondition(lambda self: any(r.state is TaskState.FAILED for r in self.records.values()))
    @rule(data=st.data())
    def retry(self, data: st.DataObject) -> None:
        record = data.draw(st.sampled_from(self.in_state(TaskState.FAILED)))
        try:
            self.core.retry(record, self.tick())
        except QueueFull:
            assert not self.admits(1)
            return
        self.created(1)
        self.lives[record.id] += 1
        self.life_starts[record.id] = len(record.history) - 1
        ours = record.id in self.core.unfinished  # local: always; shared: never (anyone's)
        assert ours is not isinstance(self.core.ownership, SharedOwnership)
        assert ours is any(job.id == record.id for job in self.core.batch.ready)
        self.retried(record)
        self.commit()

    @precondition(lambda self: any(r.state in FINISHED for r in self.records.values()))
    @rule(data=st.data(), purge=st.booleans())
    def delete(self, data: st.DataObject, purge: bool) -> None:
        record = data.draw(st.sampled_from(self.in_state(*FINISHED)))
        if purge:  # the backend deleted it; the core keeps its counts
            self.core.purged({(record.type, record.state): 1})
        else:
            self.core.delete(record)
            assert self.core.batch.deleted == [record.id]
        del self.records[record.id]
        self.commit()

    # -- the scheduler ---------------------------------------------------------------------------

    @precondition(lambda self: any(r.state is TaskState.PENDING for r in self.records.values()))
    @rule(count=st.integers(1, 3))
    def start(self, count: int) -> None:
        waiting = self.in_state(TaskState.PENDING, TaskState.RETRYING)
        ids = [r.id for r in waiting if r.id in self.core.unfinished][:count]
        self.core.record([Started(ids, "w", self.tick())])
        self.commit()

    @precondition(lambda self: any(r.state is TaskState.RUNNING for r in self.records.values()))
    @rule(data=st.data(), how=st.sampled_from(["ok", "error", "lost", "returned"]))
    def report(self, data: st.DataObject, how: str) -> None:
        record = data.draw(st.sampled_from(self.in_state(TaskState.RUNNING)))
        self.core.record([self.outcome(record, how)])
        self.commit()

    def outcome(self, record: TaskRecord, how: str) -> object:
        at = self.tick()
        if how == "ok":
            return Completed(record.id, record.payload, at)
        if how in ("lost", "returned"):
            return Requeued(record.id, how == "lost", at)
        if record.max_retries == -1 and record.attempts >= 3:
            return Failed(record.id, ERROR, at)  # the model gives up on unlimited ones
        if record.max_retries == -1 or record.attempts <= record.max_retries:
            return Retrying(record.id, ERROR, at, at)
        return Failed(record.id, ERROR, at)

    # -- invariants ------------------------------------------------------------------------------

    @invariant()
    def agrees_with_the_model(self) -> None:
        core = self.core
        assert set(core.unfinished) == self.owned()
        self.check_counts()
        for record in self.records.values():
            # Retries are bounded: a lost worker's attempt counts, but is no failure.
            limit = 3 if record.max_retries == -1 else record.max_retries
            life = record.history[self.life_starts.get(record.id, 0) :]
            assert sum(1 for step in life if step.state is TaskState.RETRYING) <= limit, record
            assert record.history[-1].state is record.state
        assert self.numbers == sorted(set(self.numbers))

    def check_counts(self) -> None:
        held = Counter((r.type, r.state) for r in self.records.values())
        assert {k: v for k, v in self.core.counts.items() if v} == dict(held)
        waiting = Counter(r.priority for r in self.in_state(TaskState.PENDING, TaskState.RETRYING))
        assert {k: v for k, v in self.core.queued.items() if v} == dict(waiting)

    def teardown(self) -> None:
        """Run every unfinished task to its end; then each life ended exactly once."""
        while self.in_state(TaskState.PENDING, TaskState.RETRYING, TaskState.RUNNING):
            self.take_all()
            self.core.record([Started([r.id for r in self.in_state(TaskState.PENDING)], "w", 0)])
            ready = self.in_state(TaskState.RETRYING)
            self.core.record([Started([r.id for r in ready], "w", 0)])
            for record in self.in_state(TaskState.RUNNING):
                self.core.record([Completed(record.id, None, self.tick())])
            self.commit()
        for task_id, record in self.records.items():
            if task_id not in self.cancelled:
                assert self.ends[task_id] == self.lives[task_id], record
            assert record.state in FINISHED

    def take_all(self) -> None:
        """Before the teardown's run: make every unfinished task ours (shared ownership)."""


class SharedStoreModel(StoreModel):
    """The same, with a shared ownership: a task is ours if kept at submit (our scheduler had
    room) or claimed; the rest wait in the shared store for a claim. Admission goes by the
    count last read plus what was created here since."""

    def ownership(self) -> Ownership:
        self.shared = SharedOwnership("here", clock=lambda: 0.0)
        self.shared.counted(0, 0.0)
        self.shared.reserved(range(1, 10_000))
        self.ours: set[str] = set()
        self.counted, self.since = 0, 0
        return self.shared

    def admits(self, creating: int) -> bool:
        return self.counted + self.since + creating <= QUEUE_SIZE

    def created(self, count: int) -> None:
        self.since += count
        for task_id, record in self.core.batch.changed.items():
            if task_id in self.core.unfinished:
                assert record.node == "here"  # kept: owned here
                self.ours.add(task_id)

    def retried(self, record: TaskRecord) -> None:
        self.ours.discard(record.id)  # back in the shared store, for any node to claim

    def owned(self) -> set[str]:
        records = self.records
        return {i for i in self.ours if i in records and records[i].state not in FINISHED}

    def waiting(self) -> list[TaskRecord]:
        states = (TaskState.PENDING, TaskState.RETRYING)
        return [r for r in self.in_state(*states) if r.id not in self.owned()]

    @rule(room=st.integers(0, 4), take=st.integers(0, 4))
    def claim(self, room: int, take: int) -> None:
        """Our scheduler claims: the store runs what it got; the room left keeps submits."""
        records = self.waiting()[: min(room, take)]
        told: list[Claimed] = []
        self.shared.claim(Claim(room, 1.0), told.append)
        chores = self.shared.chores()
        assert chores is not None
        if room == 0:
            return
        jobs = self.core.claimed(records)
        self.shared.claimed(room, jobs)
        self.ours.update(r.id for r in records)
        assert self.shared.parked == room - len(records)

    @rule()
    def count(self) -> None:
        """The count admission goes by is read again (all of the store, ours or not)."""
        unfinished = self.in_state(TaskState.PENDING, TaskState.RUNNING, TaskState.RETRYING)
        self.counted, self.since = len(unfinished), 0
        self.shared.counted(self.counted, 0.0)

    def check_counts(self) -> None:
        pass  # a shared store's counts are the backend's, not kept here

    def take_all(self) -> None:
        records = self.waiting()
        self.ours.update(r.id for r in records)
        self.core.claimed(records)


for machine in (StoreModel, SharedStoreModel):
    machine.TestCase.settings = settings(max_examples=150, stateful_step_count=30, deadline=None)
test_the_store_core_agrees_with_its_model = StoreModel.TestCase
test_a_shared_store_core_agrees_with_its_model = SharedStoreModel.TestCase


# -- what the cores import ------------------------------------------------------------------------

CORES = ("cores/store_core.py", "cores/ownership.py")
# errors.py imports trio for trio.WouldBlock, a base of MailboxFull and QueueFull (the API's
# conventions): the cores raise these exceptions, so that import is the one they may reach.
ALLOWED_TRIO = {"errors.py"}


def imports_of(path: Path) -> tuple[set[str], set[Path]]:
    """The absolute modules ``path`` imports (anywhere, deferred ones too), and the modules
    of actors/ it imports relatively."""
    absolute: set[str] = set()
    relative: set[Path] = set()
    for node in _nodes(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            absolute.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            absolute.add(node.module)
        elif isinstance(node, ast.ImportFrom):
            folder = path.parent
            for _ in range(node.level - 1):
                folder = folder.parent
            parts = (node.module or "").split(".") if node.module else []
            target = folder.joinpath(*parts)
            names = [alias.name for alias in node.names] if not parts else [""]
            for name in names:
                module = target / name if name else target
                file = module.with_suffix(".py")
                relative.add(file if file.exists() else module / "__init__.py")
    return absolute, relative


def _nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node of ``tree`` but those under ``if TYPE_CHECKING:`` (never run)."""
    found: list[ast.AST] = []
    todo = [tree]
    while todo:
        node = todo.pop()
        found.append(node)
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return found


def test_the_store_cores_import_neither_trio_nor_a_backend() -> None:
    for core in CORES:
        seen: set[Path] = set()
        todo = [ACTORS / core]
        while todo:
            path = todo.pop()
            if path in seen:
                continue
            seen.add(path)
            absolute, relative = imports_of(path)
            assert not any(name.split(".")[0] == "trio" for name in absolute) or (
                path.name in ALLOWED_TRIO
            ), f"{core} reaches {path.name}, which imports trio"
            assert ACTORS / "backends" not in {p.parent for p in relative}, path
            assert not any("backends" in name for name in absolute), path
            todo.extend(relative)
        assert {p.name for p in seen} >= {Path(core).name, "record.py", "task.py"}
