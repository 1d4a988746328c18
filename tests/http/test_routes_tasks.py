"""The /api/v1/tasks resource (and its /api/v1/jobs alias) through the Quart test client."""

from __future__ import annotations

import trio.testing

from oncue.actors import Engine, TaskState

TASK_FIELDS = {
    "id", "type", "payload", "priority", "status", "created_at", "started_at", "finished_at",
    "retry_count", "max_retries", "timeout", "run_at", "result", "error", "progress",
}  # fmt: skip


async def submit(client, body, status=201):
    response = await client.post("/api/v1/tasks", json=body)
    assert response.status_code == status, await response.get_data()
    return await response.get_json()


async def test_submit_returns_201_with_every_task_field(client) -> None:
    task = await submit(client, {"type": "double", "payload": 21, "priority": "high"})
    assert set(task) >= TASK_FIELDS
    assert (task["type"], task["payload"], task["priority"]) == ("double", 21, 2)
    assert task["status"] == "pending"
    assert task["created_at"].endswith("Z")


async def test_same_key_returns_the_existing_task_with_200(client) -> None:
    first = await submit(client, {"type": "echo", "payload": 1, "key": "order-7"})
    again = await submit(client, {"type": "echo", "payload": 2, "key": "order-7"}, status=200)
    assert again["id"] == first["id"]
    assert again["payload"] == 1


async def test_wait_returns_the_finished_task(client) -> None:
    task = await submit(client, {"type": "double", "payload": 21})
    response = await client.get(f"/api/v1/tasks/{task['id']}/wait?timeout=30")
    done = await response.get_json()
    assert (done["status"], done["result"], done["finished_at"] is not None) == (
        "completed",
        42,
        True,
    )


async def test_wait_that_times_out_returns_the_task_as_it_is(client, engine: Engine) -> None:
    await engine.pause()
    task = await submit(client, {"type": "echo"})
    response = await client.get(f"/api/v1/tasks/{task['id']}/wait?timeout=0")
    assert response.status_code == 200
    assert (await response.get_json())["status"] == "pending"


async def test_get_unknown_task_is_404(client) -> None:
    response = await client.get("/api/v1/tasks/no-such-task")
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "not_found"


async def test_batch_submits_all(client) -> None:
    body = {"tasks": [{"type": "echo", "payload": n} for n in range(3)]}
    response = await client.post("/api/v1/tasks/batch", json=body)
    assert response.status_code == 201
    tasks = (await response.get_json())["tasks"]
    assert [task["payload"] for task in tasks] == [0, 1, 2]


async def test_batch_is_all_or_nothing(client, engine: Engine) -> None:
    body = {"tasks": [{"type": "echo"}, {"type": "no-such-type"}]}
    response = await client.post("/api/v1/tasks/batch", json=body)
    assert response.status_code == 422
    assert (await engine.stats()).by_state["pending"] == 0
    assert (await engine.list()).tasks == []


async def test_batch_over_the_limit_is_422_naming_tasks(client) -> None:
    body = {"tasks": [{"type": "echo"}] * 11}
    response = await client.post("/api/v1/tasks/batch", json=body)
    assert response.status_code == 422
    assert (await response.get_json())["error"]["field"] == "tasks"


async def test_list_filters_and_pages_with_a_cursor(client, engine: Engine) -> None:
    await engine.pause()
    for n in range(5):
        await submit(client, {"type": "echo", "payload": n})
    await submit(client, {"type": "double", "payload": 1})
    seen = []
    url = "/api/v1/tasks?type=echo&status=pending&limit=2"
    while url:
        page = await (await client.get(url)).get_json()
        seen += [task["payload"] for task in page["tasks"]]
        cursor = page["next_cursor"]
        url = f"/api/v1/tasks?type=echo&status=pending&limit=2&cursor={cursor}" if cursor else ""
    assert seen == [4, 3, 2, 1, 0]


async def test_delete_cancels_an_unfinished_task(client, engine: Engine) -> None:
    await engine.pause()
    task = await submit(client, {"type": "echo"})
    response = await client.delete(f"/api/v1/tasks/{task['id']}")
    assert response.status_code == 200
    assert (await response.get_json())["status"] == "cancelled"


async def test_delete_interrupts_a_running_task(client, engine: Engine) -> None:
    task = await submit(client, {"type": "block"})
    await wait_running(engine, task["id"])
    response = await client.delete(f"/api/v1/tasks/{task['id']}")
    assert (await response.get_json())["status"] == "cancelled"


async def wait_running(engine: Engine, task_id: str) -> None:
    """Poll (bounded, no sleeps) until the engine has started the task."""
    for _ in range(1000):
        if (await engine.get(task_id)).state is TaskState.RUNNING:
            return
        await trio.testing.wait_all_tasks_blocked()
    raise AssertionError(f"task {task_id} never started")


async def test_delete_forgets_a_finished_task_with_204(client, engine: Engine) -> None:
    task = await submit(client, {"type": "echo"})
    await engine.wait(task["id"])
    response = await client.delete(f"/api/v1/tasks/{task['id']}")
    assert response.status_code == 204
    assert (await client.get(f"/api/v1/tasks/{task['id']}")).status_code == 404


async def test_cancel_of_a_finished_task_is_409(client, engine: Engine) -> None:
    task = await submit(client, {"type": "echo"})
    await engine.wait(task["id"])
    response = await client.post(f"/api/v1/tasks/{task['id']}/cancel")
    assert response.status_code == 409
    assert (await response.get_json())["error"]["code"] == "already_finished"


async def test_retry_requeues_a_failed_task(client, engine: Engine) -> None:
    task = await submit(client, {"type": "boom"})
    failed = await engine.wait(task["id"])
    assert failed.state.value == "failed"
    response = await client.post(f"/api/v1/tasks/{task['id']}/retry")
    assert response.status_code == 200
    retried = await response.get_json()
    assert (retried["status"], retried["error"], retried["attempts"]) == ("pending", None, 0)
    again = await engine.wait(task["id"])  # it ran again (and, being boom, failed again)
    assert again.state.value == "failed"
    assert again.attempts >= 1
    assert [step.state.value for step in again.history].count("running") >= 2


async def test_retry_of_a_task_that_did_not_fail_is_409(client, engine: Engine) -> None:
    task = await submit(client, {"type": "echo"})
    await engine.wait(task["id"])
    response = await client.post(f"/api/v1/tasks/{task['id']}/retry")
    assert response.status_code == 409
    assert (await response.get_json())["error"]["code"] == "not_failed"


async def test_delay_and_run_at_are_accepted(client) -> None:
    delayed = await submit(client, {"type": "echo", "delay": 3600})
    assert delayed["run_at"] is not None
    scheduled = await submit(client, {"type": "echo", "run_at": "2999-01-01T00:00:00"})
    assert scheduled["run_at"].startswith("2999-01-01T00:00:00")


async def test_jobs_alias_uses_job_id_and_completed_at(client, engine: Engine) -> None:
    response = await client.post("/api/v1/jobs", json={"type": "double", "payload": 2})
    job = await response.get_json()
    assert "job_id" in job
    assert "id" not in job
    await engine.wait(job["job_id"])
    done = await (await client.get(f"/api/v1/jobs/{job['job_id']}")).get_json()
    assert done["completed_at"] is not None
    assert "finished_at" not in done
    assert done["result"] == 4


async def test_wait_many_returns_every_task_finished_in_the_order_asked(client) -> None:
    tasks = [await submit(client, {"type": "double", "payload": n}) for n in range(3)]
    ids = [task["id"] for task in reversed(tasks)]
    response = await client.post("/api/v1/tasks/wait?timeout=30", json={"ids": ids})
    assert response.status_code == 200
    done = (await response.get_json())["tasks"]
    assert [(task["id"], task["status"], task["result"]) for task in done] == [
        (ids[0], "completed", 4),
        (ids[1], "completed", 2),
        (ids[2], "completed", 0),
    ]


async def test_wait_many_that_times_out_returns_the_tasks_as_they_are(client, engine) -> None:
    done = await submit(client, {"type": "echo", "payload": 1})
    await engine.wait(done["id"])
    await engine.pause()
    queued = await submit(client, {"type": "echo"})
    body = {"ids": [queued["id"], done["id"]], "timeout": 0}
    response = await client.post("/api/v1/tasks/wait", json=body)
    assert response.status_code == 200
    statuses = [task["status"] for task in (await response.get_json())["tasks"]]
    assert statuses == ["pending", "completed"]


async def test_wait_many_refuses_bad_input_naming_the_field(client) -> None:
    for body, field in [
        ({"ids": []}, "ids"),
        ({"ids": ["a"] * 1001}, "ids"),
        ({"ids": "abc"}, "ids"),
        ({"ids": ["a"], "timeout": 301}, "timeout"),
        ({"ids": ["a"], "wait": 1}, "wait"),
    ]:
        response = await client.post("/api/v1/tasks/wait", json=body)
        assert response.status_code == 422, body
        assert (await response.get_json())["error"]["field"] == field, body
    response = await client.post("/api/v1/tasks/wait?timeout=-1", json={"ids": ["a"]})
    assert (await response.get_json())["error"]["field"] == "timeout"
    response = await client.post("/api/v1/tasks/wait", json={"ids": ["nosuchtask"]})
    assert response.status_code == 404


async def test_jobs_say_processing_and_list_under_jobs(client, engine: Engine) -> None:
    job = await (await client.post("/api/v1/jobs", json={"type": "block"})).get_json()
    await wait_running(engine, job["job_id"])
    running = await (await client.get(f"/api/v1/jobs/{job['job_id']}")).get_json()
    assert running["status"] == "processing"
    listed = await (await client.get("/api/v1/jobs?status=processing")).get_json()
    assert [item["job_id"] for item in listed["jobs"]] == [job["job_id"]]
    assert "tasks" not in listed
    assert (await (await client.get(f"/api/v1/tasks/{job['job_id']}")).get_json())[
        "status"
    ] == "running"
    batch = {"tasks": [{"type": "echo"}]}
    created = await (await client.post("/api/v1/jobs/batch", json=batch)).get_json()
    assert [item["status"] for item in created["jobs"]] == ["pending"]
    await client.delete(f"/api/v1/jobs/{job['job_id']}")
