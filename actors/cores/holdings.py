"""Which worker holds which jobs, and which held tasks were cancelled (pure, no trio).

A job is held from the moment the scheduler hands it to a worker until that worker reports
how it ended, or is presumed lost (it restarted or left). A task is held by one worker at most.
"""

from __future__ import annotations

import attrs

from ..messages import Job


@attrs.define
class Holdings:
    """The jobs each worker holds, who holds each task, and the held tasks cancelled since."""

    by_worker: dict[str, dict[str, Job]] = attrs.field(factory=dict)  # worker -> id -> job
    holder: dict[str, str] = attrs.field(factory=dict)  # task id -> worker
    cancelled: set[str] = attrs.field(factory=set)
    # Tasks a claim brought back while a cancelled run of them was stopping (a shared store:
    # our lease lapsed, the task was interrupted, and our next claim got it again before the
    # worker said so; found by the shared simulation): queued once that run stopped.
    returning: dict[str, Job] = attrs.field(factory=dict)

    def __len__(self) -> int:
        """How many tasks are held, by any worker."""
        return len(self.holder)

    def __contains__(self, task_id: str) -> bool:
        return task_id in self.holder

    def hold(self, worker: str, jobs: list[Job]) -> None:
        """``worker`` was handed ``jobs``."""
        held = self.by_worker.get(worker)
        if held is None:
            held = self.by_worker[worker] = {}
        holder = self.holder
        for job in jobs:
            held[job.id] = job
            holder[job.id] = worker

    def release(self, worker: str, task_id: str) -> bool:
        """``worker`` reported on ``task_id``: forget it. True if the report counts, False if
        ``worker`` no longer held it (it was presumed lost, the task re-queued) or the task was
        cancelled meanwhile (whatever the worker says, the task is over)."""
        if self.holder.get(task_id) != worker:
            return False
        del self.holder[task_id]
        held = self.by_worker[worker]
        del held[task_id]
        if not held:
            del self.by_worker[worker]
        return not (self.cancelled and self.was_cancelled(task_id))  # rarely any: no call

    def release_all(self, worker: str) -> list[Job]:
        """Forget everything ``worker`` held (it restarted or left); the cancelled are dropped."""
        held = self.by_worker.pop(worker, None)
        if not held:
            return []
        for task_id in held:
            del self.holder[task_id]
        return [job for job in held.values() if not self.was_cancelled(job.id)]

    def cancel(self, task_id: str) -> tuple[str, Job] | None:
        """Mark a held task cancelled; return the worker holding it and the Job it was handed
        (None: not held)."""
        worker = self.holder.get(task_id)
        if worker is None:
            return None
        self.cancelled.add(task_id)
        return worker, self.by_worker[worker][task_id]

    def was_cancelled(self, task_id: str) -> bool:
        """True (once) for a task cancelled while a worker held it: no retry, no re-queue."""
        if task_id in self.cancelled:
            self.cancelled.discard(task_id)
            return True
        return False

    def workers(self) -> list[str]:
        """The workers holding anything."""
        return list(self.by_worker)

    def current(self) -> dict[str, str]:
        """The first task each worker holds (what it runs, or runs next)."""
        return {worker: next(iter(jobs)) for worker, jobs in self.by_worker.items() if jobs}

    def hold_back(self, job: Job) -> None:
        """``job`` came back while a worker holds it: keep it until that run stops, if the
        run was cancelled (else it is the same run: nothing to do)."""
        if job.id in self.cancelled:
            self.returning[job.id] = job

    def returned(self) -> list[Job]:
        """The jobs held back whose cancelled run has now stopped: to be queued again."""
        if not self.returning:
            return []
        free = [job for task_id, job in self.returning.items() if task_id not in self.holder]
        for job in free:
            del self.returning[job.id]
        return free

    def without_cancelled(self, jobs: list[Job]) -> list[Job]:
        """``jobs`` (a batch about to be handed out) less the tasks cancelled since they were
        held for it: those are released (no outcome will come for them) and never begin."""
        if not self.cancelled:
            return jobs
        kept = []
        for job in jobs:
            worker = self.holder.get(job.id) if job.id in self.cancelled else None
            if worker is None:
                kept.append(job)
            else:
                self.release(worker, job.id)
        return kept
