"""`POST /api/v1/tasks/bulk` and the task resource's `history`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from quart.typing import TestClientProtocol as Client

from oncue.actors import Engine
from oncue.http.app import create_app
from oncue.http.auth import AuthSettings, parse_api_tokens
from oncue.http.routes_bulk import MAX_BULK

ALICE = {"Authorization": "Bearer token-a"}
BOB = {"Authorization": "Bearer token-b"}


async def submit(client: Client, body: dict, headers: dict[str, str] | None = None) -> dict:
    response = await client.post("/api/v1/tasks", json=body, headers=headers)
    assert response.status_code == 201, await response.get_data()
    task: dict = await response.get_json()
    return task


async def bulk(client: Client, body: dict, headers: dict[str, str] | None = None) -> dict:
    response = await client.post("/api/v1/tasks/bulk", json=body, headers=headers)
    assert response.status_code == 200, await response.get_data()
    answer: dict = await response.get_json()
    return answer


async def test_a_task_shows_its_history_with_worker_and_error(client: Client, engine: Engine):
    task = await submit(client, {"type": "boom"})
    await engine.wait(task["id"])
    shown = await (await client.get(f"/api/v1/tasks/{task['id']}")).get_json()
    assert [step["status"] for step in shown["history"]] == ["pending", "running", "failed"]
    assert shown["history"][1]["worker"].startswith("worker-")
    assert shown["history"][2]["error"] == "Fatal: boom on purpose"
    assert all(step["at"].endswith("Z") for step in shown["history"])
    assert "boom on purpose" in shown["error"]["traceback"]


async def test_retry_all_failed_of_a_type(client: Client, engine: Engine) -> None:
    failed = [await submit(client, {"type": "boom"}) for _ in range(3)]
    done = await submit(client, {"type": "double", "payload": 1})
    await engine.wait_idle()
    answer = await bulk(client, {"action": "retry", "filter": {"type": "boom"}})
    assert answer == {"action": "retry", "matched": 3, "done": 3, "failed": [], "next_cursor": None}
    await engine.wait_idle()
    for task in failed:
        again = await engine.get(task["id"])
        states = [step.state.value for step in again.history]
        assert states == ["pending", "running", "failed", "pending", "running", "failed"]
    assert (await engine.get(done["id"])).attempts == 1


async def test_bulk_goes_on_with_the_cursor_past_the_limit(client: Client, engine: Engine):
    for _ in range(5):
        await submit(client, {"type": "boom"})
    await engine.wait_idle()
    first = await bulk(client, {"action": "delete", "filter": {"status": "failed"}, "limit": 3})
    assert (first["done"], first["next_cursor"] is not None) == (3, True)
    body = {"action": "delete", "filter": {"status": "failed"}, "limit": 3}
    second = await bulk(client, {**body, "cursor": first["next_cursor"]})
    assert (second["done"], second["next_cursor"]) == (2, None)
    assert (await engine.list()).tasks == []


async def test_cancel_by_creation_time(client: Client, engine: Engine) -> None:
    await engine.pause()
    early = await submit(client, {"type": "double", "payload": 1})
    late = await submit(client, {"type": "double", "payload": 2})
    cut = (await engine.get(late["id"])).created_at
    answer = await bulk(client, {"action": "cancel", "filter": {"created_before": cut}})
    assert answer["done"] == 1
    assert (await engine.get(early["id"])).state.value == "cancelled"
    assert (await engine.get(late["id"])).state.value == "pending"
    await engine.resume()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "explode"}, "action"),
        ({"action": "retry", "filter": {"status": "nope"}}, "filter.status"),
        ({"action": "retry", "filter": {"status": "pending"}}, "filter.status"),
        ({"action": "retry", "filter": {"colour": "red"}}, "colour"),
        ({"action": "delete", "filter": {"created_after": "yesterday"}}, "filter.created_after"),
        ({"action": "delete", "limit": MAX_BULK + 1}, "limit"),
    ],
)
async def test_bad_bulk_requests_are_a_422_naming_the_field(client: Client, body: dict, field):
    response = await client.post("/api/v1/tasks/bulk", json=body)
    assert response.status_code == 422
    error = (await response.get_json())["error"]
    assert error["field"] == field
    if field == "limit":
        assert str(MAX_BULK) in error["message"]


@pytest.fixture
async def tenants(engine: Engine) -> AsyncIterator[Client]:
    tokens = parse_api_tokens("alice:token-a,bob:token-b,root:token-root:admin")
    app = create_app(engine, auth=AuthSettings(api_tokens=tokens))
    async with app.test_app() as test_app:
        yield test_app.test_client()


async def test_bulk_acts_on_the_callers_own_tasks_only(tenants: Client, engine: Engine):
    await engine.pause()
    alices = await submit(tenants, {"type": "double", "payload": 1}, ALICE)
    bobs = await submit(tenants, {"type": "double", "payload": 2}, BOB)
    answer = await bulk(tenants, {"action": "cancel"}, BOB)
    assert answer["done"] == 1
    assert (await engine.get(bobs["id"])).state.value == "cancelled"
    assert (await engine.get(alices["id"])).state.value == "pending"
    await engine.resume()
