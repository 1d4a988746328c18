"""The other queues' routes, shaped as their READMEs document them."""

from __future__ import annotations

from oncue.actors import Engine


async def test_tasks_doubles_result_with_small_integer_ids(client, engine: Engine) -> None:
    response = await client.post("/tasks", json={"status": "new", "result": 21})
    created = await response.get_json()
    assert created == {"id": 1, "status": "queued", "result": 21}
    await engine.wait(1)
    done = await (await client.get("/tasks/1")).get_json()
    assert done == {"id": 1, "status": "completed", "result": 42}


async def test_tasks_unknown_id_is_404_json(client) -> None:
    response = await client.get("/tasks/999")
    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "not_found"


async def test_submit_and_status_report_success(client, engine: Engine) -> None:
    body = {"type": "email", "payload": {"to": "a@example.com", "subject": "hi"}}
    response = await client.post("/submit", json=body)
    submitted = await response.get_json()
    assert submitted["message"] == "Task submitted successfully"
    assert submitted["status"] == "pending"
    await engine.wait(submitted["task_id"])
    status = await (await client.get(f"/status/{submitted['task_id']}")).get_json()
    assert status["success"] is True
    assert status["task_id"] == submitted["task_id"]
    assert status["data"]["dry_run"] is True
    assert status["processed_at"].endswith("Z")


async def test_submit_keeps_the_clients_id(client, engine: Engine) -> None:
    await engine.pause()
    body = {"id": "job-42", "type": "echo", "payload": 1}
    submitted = await (await client.post("/submit", json=body)).get_json()
    assert submitted["task_id"] == "job-42"
    pending = await (await client.get("/status/job-42")).get_json()
    assert pending == {"task_id": "job-42", "status": "pending"}


async def test_status_reports_failure(client, engine: Engine) -> None:
    submitted = await (await client.post("/submit", json={"type": "boom"})).get_json()
    await engine.wait(submitted["task_id"])
    status = await (await client.get(f"/status/{submitted['task_id']}")).get_json()
    assert (status["success"], status["error"]) == (False, "boom on purpose")
    assert "processed_at" in status


async def test_stats_has_the_four_counters(client, engine: Engine) -> None:
    task = await (await client.post("/submit", json={"type": "echo"})).get_json()
    await engine.wait(task["task_id"])
    stats = await (await client.get("/stats")).get_json()
    assert stats == {"total_processed": 1, "successful": 1, "failed": 0, "queue_length": 0}


async def test_a_client_id_from_submit_survives_a_restart(tmp_path) -> None:
    from oncue.actors import open_engine
    from oncue.http.app import create_app

    store = f"sqlite:///{tmp_path}/compat.db"
    body = {"id": "order-9", "type": "double", "payload": 4}
    async with open_engine(store=store, workers=1) as engine:
        async with create_app(engine).test_app() as app:
            assert (await app.test_client().post("/submit", json=body)).status_code == 202
        await engine.wait_idle()
    async with (
        open_engine(store=store, workers=1) as engine,
        create_app(engine).test_app() as app,
    ):
        status = await app.test_client().get("/status/order-9")
        assert status.status_code == 200
        assert (await status.get_json())["data"] == 8
