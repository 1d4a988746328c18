"""Every input limit answers a 4xx that names what was too big, too small or malformed."""

from __future__ import annotations

from typing import Any

import pytest
from quart.typing import TestClientProtocol as Client

from oncue.actors import Engine
from oncue.http.app import create_app

TOO_BIG = 2**63


async def rejected(client: Client, path: str, body: Any) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert 400 <= response.status_code < 500, await response.get_data()
    error: dict[str, Any] = (await response.get_json())["error"]
    return error | {"status": response.status_code}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "echo\x1b[31m"}, "type"),
        ({"type": "x" * 101}, "type"),
        ({"type": ""}, "type"),
        ({"type": "echo", "priority": TOO_BIG}, "priority"),
        ({"type": "echo", "priority": -TOO_BIG - 1}, "priority"),
        ({"type": "echo", "priority": "urgent" * 10}, "priority"),
        ({"type": "echo", "timeout": 0}, "timeout"),
        ({"type": "echo", "timeout": 8 * 86400}, "timeout"),
        ({"type": "echo", "max_retries": -2}, "max_retries"),
        ({"type": "echo", "max_retries": 1001}, "max_retries"),
        ({"type": "echo", "delay": -1}, "delay"),
        ({"type": "echo", "delay": 1e12}, "delay"),
        ({"type": "echo", "run_at": 1e15}, "run_at"),
        ({"type": "echo", "key": ""}, "key"),
        ({"type": "echo", "key": "k" * 201}, "key"),
    ],
)
async def test_submit_options_out_of_range_are_422_naming_the_field(
    client: Client, body: dict[str, Any], field: str
) -> None:
    error = await rejected(client, "/api/v1/tasks", body)
    assert (error["status"], error["field"]) == (422, field)


async def test_edge_values_are_accepted(client: Client) -> None:
    body = {"type": "echo", "priority": 2**63 - 1, "max_retries": 1000, "timeout": 604800}
    response = await client.post("/api/v1/tasks", json=body)
    assert response.status_code == 201
    assert (await response.get_json())["priority"] == 2**63 - 1


async def test_payload_over_the_limit_is_413_naming_it(engine: Engine) -> None:
    app = create_app(engine, max_payload_size=100)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        big = {"type": "echo", "payload": "x" * 200}
        error = await rejected(client, "/api/v1/tasks", big)
        assert (error["status"], error["code"], error["field"]) == (
            413,
            "payload_too_large",
            "payload",
        )
        batch = {"tasks": [{"type": "echo"}, big]}
        error = await rejected(client, "/api/v1/tasks/batch", batch)
        assert error["field"] == "tasks[1].payload"
        error = await rejected(client, "/submit", big)
        assert error["field"] == "payload"
        assert (
            await client.post("/api/v1/tasks", json={"type": "echo", "payload": 1})
        ).status_code == 201


async def test_batch_fields_are_named_by_position(client: Client) -> None:
    error = await rejected(
        client,
        "/api/v1/tasks/batch",
        {"tasks": [{"type": "echo"}, {"type": "echo", "priority": TOO_BIG}]},
    )
    assert error["field"] == "tasks[1].priority"
    error = await rejected(client, "/api/v1/tasks/batch", {"tasks": [{"type": "echo"}] * 11})
    assert error["field"] == "tasks"


async def test_body_over_the_limit_is_413(client: Client) -> None:
    response = await client.post("/api/v1/tasks", data=b" " * (64 * 1024 + 1))
    assert response.status_code == 413
    assert (await response.get_json())["error"]["code"] == "body_too_large"


@pytest.mark.parametrize("limit", ["0", "1001", "x"])
async def test_list_limit_out_of_range_is_422(client: Client, limit: str) -> None:
    response = await client.get(f"/api/v1/tasks?limit={limit}")
    assert response.status_code == 422
    assert (await response.get_json())["error"]["field"] == "limit"


async def test_compat_routes_bound_their_fields(client: Client) -> None:
    error = await rejected(client, "/tasks", {"result": TOO_BIG})
    assert (error["status"], error["field"]) == (422, "result")
    error = await rejected(client, "/submit", {"type": "echo", "id": "i" * 201})
    assert (error["status"], error["field"]) == (422, "id")
    response = await client.put("/api/v1/workers", json={"count": TOO_BIG})
    assert response.status_code == 422
    assert (await response.get_json())["error"]["field"] == "count"
