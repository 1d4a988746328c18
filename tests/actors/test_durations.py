"""Durations: the measured time of each task type, and the dispatch batches it sizes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from oncue.actors.cores.durations import BATCH_BUDGET, MAX_BATCH, Durations, fair_share
from oncue.actors.cores.queues import Queues
from oncue.actors.messages import Job


def job(number: int, kind: str, priority: int = 0) -> Job:
    return Job(f"j{number}", kind, None, priority, 5.0, 0, 3, None)


def one_by_one(durations: Durations, queues: Queues, share: int) -> list[Job]:
    """The batch as peek()/pop() one job at a time take it (the rule take() keeps)."""
    jobs = [queues.pop()]
    budget = BATCH_BUDGET - durations.by_type.get(jobs[0].type, BATCH_BUDGET)
    while len(jobs) < share:
        nxt = queues.peek()
        if nxt is None:
            break
        budget -= durations.by_type.get(nxt.type, BATCH_BUDGET)
        if budget < 0:
            break
        jobs.append(queues.pop())
    return jobs


def test_fast_tasks_go_out_in_batches_bounded_by_the_budget_and_max_batch() -> None:
    durations = Durations({"fast": 1e-6, "slow": 0.0004})
    queues = Queues()
    queues.push_ready([job(number, "fast") for number in range(500)])
    assert len(durations.take(queues, fair_share(500, 1))) == MAX_BATCH
    queues.push_ready([job(1000 + number, "slow") for number in range(10)])
    while queues.peek() is not None and queues.peek().type == "fast":  # type: ignore[union-attr]
        queues.pop()
    assert len(durations.take(queues, MAX_BATCH)) == 2  # 0.4 ms each: two fit in 1 ms


def test_an_unmeasured_type_goes_out_alone() -> None:
    queues = Queues()
    queues.push_ready([job(number, "new") for number in range(5)])
    assert [j.id for j in Durations().take(queues, 5)] == ["j0"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 1)), min_size=1, max_size=40),
    st.dictionaries(st.sampled_from("abc"), st.sampled_from([0.0, 1e-5, 3e-4, 0.001, 0.01])),
    st.integers(1, 40),
    st.sets(st.integers(0, 39), max_size=10),
)
def test_take_gives_what_one_pop_at_a_time_would(kinds, measured, share, removed) -> None:
    """take() pops runs of one type in one call; the batch is the one-at-a-time rule's."""
    fast, slow = Queues(), Queues()
    jobs = [job(number, kind, priority) for number, (kind, priority) in enumerate(kinds)]
    for queues in (fast, slow):
        queues.push_ready(jobs)
        for number in removed:
            queues.remove(f"j{number}")
    durations = Durations(dict(measured))
    while fast.peek() is not None:
        assert slow.peek() is not None
        assert [j.id for j in durations.take(fast, share)] == [
            j.id for j in one_by_one(durations, slow, share)
        ]
    assert slow.peek() is None
