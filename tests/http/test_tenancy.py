"""Tenancy: a token's subject owns what it submits; another tenant's task is a 404."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from oncue.actors import Engine
from oncue.http.app import create_app
from oncue.http.auth import AuthSettings, parse_api_tokens

ALICE = {"Authorization": "Bearer token-a"}
BOB = {"Authorization": "Bearer token-b"}
ADMIN = {"Authorization": "Bearer token-root"}


@pytest.fixture
async def tenants(engine: Engine) -> AsyncIterator[Client]:
    tokens = parse_api_tokens("alice:token-a,bob:token-b,root:token-root:admin")
    app = create_app(engine, auth=AuthSettings(api_tokens=tokens))
    async with app.test_app() as test_app:
        yield test_app.test_client()


async def submit(client: Client, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/tasks", json={"type": "echo", "delay": 3600, **body}, headers=headers
    )
    assert response.status_code in (200, 201)
    task: dict[str, Any] = await response.get_json()
    return task


async def status(client: Client, method: str, path: str, headers: dict[str, str]) -> int:
    response = await client.open(path, method=method, headers=headers)
    return response.status_code


async def test_another_tenants_task_is_404_everywhere(tenants: Client) -> None:
    task = await submit(tenants, BOB)
    base = f"/api/v1/tasks/{task['id']}"
    for method, path in [
        ("GET", base),
        ("GET", f"{base}/wait?timeout=0"),
        ("POST", f"{base}/cancel"),
        ("POST", f"{base}/retry"),
        ("DELETE", base),
        ("GET", f"/tasks/{task['number']}"),
    ]:
        assert await status(tenants, method, path, ALICE) == 404, (method, path)
    missing = await tenants.get("/api/v1/tasks/nosuchtask", headers=ALICE)
    other = await tenants.get(base, headers=ALICE)
    assert (await other.get_json())["error"]["code"] == (await missing.get_json())["error"]["code"]
    waited = await tenants.post(
        "/api/v1/tasks/wait?timeout=0", json={"ids": [task["id"]]}, headers=ALICE
    )
    assert waited.status_code == 404
    mine = await tenants.post(
        "/api/v1/tasks/wait?timeout=0", json={"ids": [task["id"]]}, headers=BOB
    )
    assert mine.status_code == 200
    assert await status(tenants, "GET", base, BOB) == 200
    assert await status(tenants, "POST", f"{base}/cancel", BOB) == 200


async def test_lists_show_only_ones_own_tasks_unless_admin(tenants: Client) -> None:
    mine = await submit(tenants, ALICE)
    theirs = await submit(tenants, BOB)
    listed = await (await tenants.get("/api/v1/tasks", headers=ALICE)).get_json()
    assert [task["id"] for task in listed["tasks"]] == [mine["id"]]
    everything = await (await tenants.get("/api/v1/tasks", headers=ADMIN)).get_json()
    assert {task["id"] for task in everything["tasks"]} == {mine["id"], theirs["id"]}
    assert await status(tenants, "POST", f"/api/v1/tasks/{theirs['id']}/cancel", ADMIN) == 200


async def test_idempotency_keys_are_per_tenant(tenants: Client) -> None:
    alice = await submit(tenants, ALICE, key="order-7")
    bob = await submit(tenants, BOB, key="order-7")
    assert alice["id"] != bob["id"]
    assert alice["key"] == bob["key"] == "order-7"
    again = await submit(tenants, ALICE, key="order-7")
    assert again["id"] == alice["id"]


async def test_compat_submit_ids_are_per_tenant(tenants: Client) -> None:
    body = {"type": "echo", "payload": 1, "id": "job-1"}
    assert (await tenants.post("/submit", json=body, headers=ALICE)).status_code == 202
    assert (await tenants.get("/status/job-1", headers=ALICE)).status_code == 200
    hidden = await tenants.get("/status/job-1", headers=BOB)  # as the REST queue said of a miss
    assert await hidden.get_json() == {"task_id": "job-1", "status": "pending or not found"}
