"""The other queues' routes, shaped as their READMEs document them."""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from PIL import Image

from oncue.actors import Engine, Task
from oncue.http.routes_compat import route_key


async def finished(engine: Engine, task_id: str) -> Task:
    """The task `/submit` made under `task_id`, once finished."""
    return await engine.wait((await engine.get_by_key(route_key("/submit", task_id, None))).id)


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
    await finished(engine, submitted["task_id"])
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
    await finished(engine, submitted["task_id"])
    status = await (await client.get(f"/status/{submitted['task_id']}")).get_json()
    assert (status["success"], status["error"]) == (False, "boom on purpose")
    assert "processed_at" in status


async def test_stats_has_the_four_counters(client, engine: Engine) -> None:
    task = await (await client.post("/submit", json={"type": "echo"})).get_json()
    await finished(engine, task["task_id"])
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


# -- the seeds' own examples, verbatim (issue 12) --------------------------------------------

SEED_SUBMITS = [
    {"type": "email", "payload": "Send notification"},  # the REST task queue's README
    {"type": "email", "payload": {"recipient": "user@example.com", "subject": "Welcome"}},
    {"type": "email_send", "payload": {"to": "user@example.com", "subject": "Hi", "body": "x"}},
    {"type": "image_resize", "payload": {"url": "https://example.com/a.jpg", "width": 800}},
    {"type": "data_export", "payload": {"format": "csv", "table": "users"}},
    {"type": "file_process", "payload": {"file": "report.pdf", "operation": "analyze"}},
]


@pytest.mark.parametrize("body", SEED_SUBMITS, ids=lambda body: body["type"])
async def test_the_seeds_task_types_and_payloads_complete(client, engine: Engine, body) -> None:
    response = await client.post("/submit", json=body)
    assert response.status_code == 202
    task_id = (await response.get_json())["task_id"]
    await finished(engine, task_id)
    status = await (await client.get(f"/status/{task_id}")).get_json()
    assert status["success"] is True, status


async def test_image_resize_through_submit_resizes_a_real_image(client, engine: Engine) -> None:
    out = io.BytesIO()
    Image.new("RGB", (64, 32)).save(out, format="PNG")
    payload = {"image": base64.b64encode(out.getvalue()).decode(), "width": 16}
    body = {"type": "image_resize", "payload": payload}
    task_id = (await (await client.post("/submit", json=body)).get_json())["task_id"]
    data = (await finished(engine, task_id)).result
    assert (data["width"], data["height"]) == (16, 8)
    assert Image.open(io.BytesIO(base64.b64decode(data["image"]))).size == (16, 8)


async def test_status_of_an_unknown_id_is_pending_or_not_found(client) -> None:
    response = await client.get("/status/no-such-task")
    assert response.status_code == 200
    assert await response.get_json() == {
        "task_id": "no-such-task",
        "status": "pending or not found",
    }


async def test_submit_with_a_used_id_answers_with_that_tasks_real_status(client, engine) -> None:
    body: dict[str, Any] = {"id": "job-7", "type": "echo", "payload": {"n": 1}}
    assert (await client.post("/submit", json=body)).status_code == 202
    await finished(engine, "job-7")
    again = await client.post("/submit", json=body)
    assert again.status_code == 200
    assert (await again.get_json())["status"] == "completed"
    for changed in ({"type": "double"}, {"payload": {"n": 2}}):
        conflict = await client.post("/submit", json={**body, **changed})
        assert conflict.status_code == 409
        error = (await conflict.get_json())["error"]
        assert (error["code"], error["field"]) == ("id_in_use", next(iter(changed)))


async def test_compat_routes_show_only_tasks_made_through_them(client, engine: Engine) -> None:
    other = await engine.submit("echo", "not from /tasks", key="job-9")
    await engine.wait(other.id)
    assert (await client.get(f"/tasks/{other.number}")).status_code == 404
    status = await (await client.get("/status/job-9")).get_json()
    assert status == {"task_id": "job-9", "status": "pending or not found"}
    assert (await (await client.get(f"/status/{other.id}")).get_json())["status"] == (
        "pending or not found"
    )
    made = await (await client.post("/tasks", json={"status": "new", "result": 2})).get_json()
    assert (await client.get(f"/tasks/{made['id']}")).status_code == 200


async def test_status_finds_a_client_id_with_a_slash(client, engine: Engine) -> None:
    body = {"id": "orders/42", "type": "echo", "payload": "x"}
    assert (await client.post("/submit", json=body)).status_code == 202
    await finished(engine, "orders/42")
    for path in ("/status/orders/42", "/status/orders%2F42"):
        answer = await (await client.get(path)).get_json()
        assert (answer["task_id"], answer["success"], answer["data"]) == ("orders/42", True, "x")
