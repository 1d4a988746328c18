"""Every error is JSON `{"error": {"code", "message", "field"?}}` with the right status."""

from __future__ import annotations

import pytest

from oncue.actors import Engine


async def error_of(response, status):
    assert response.status_code == status, await response.get_data()
    assert response.content_type == "application/json"
    return (await response.get_json())["error"]


async def test_invalid_json_is_400(client) -> None:
    response = await client.post("/api/v1/tasks", data=b'{"type": ', headers=JSON)
    assert (await error_of(response, 400))["code"] == "invalid_json"


async def test_deeply_nested_body_is_400_not_500(client, engine: Engine) -> None:
    body = b'{"type": "echo", "payload": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    response = await client.post("/api/v1/tasks", data=body, headers=JSON)
    assert (await error_of(response, 400))["code"] == "invalid_json"
    assert (await engine.list()).tasks == []


async def test_empty_body_is_400(client) -> None:
    response = await client.post("/api/v1/tasks", data=b"")
    assert (await error_of(response, 400))["code"] == "invalid_json"


async def test_json_is_read_whatever_the_content_type(client) -> None:
    # curl -d sends application/x-www-form-urlencoded unless told otherwise
    body = b'{"type": "echo"}'
    response = await client.post("/api/v1/tasks", data=body, headers=FORM)
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"payload": 1}, "type"),
        ({"type": 5}, "type"),
        ({"type": "echo", "priority": 1.5}, "priority"),
        ({"type": "echo", "priority": "urgent"}, "priority"),
        ({"type": "echo", "timeout": -1}, "timeout"),
        ({"type": "echo", "max_retries": "x"}, "max_retries"),
        ({"type": "echo", "delay": 1, "run_at": 2}, "run_at"),
        ({"type": "echo", "run_at": 1e300}, "run_at"),
        ({"type": "echo", "run_at": "not a date"}, "run_at"),
        ({"type": "echo", "key": ""}, "key"),
        ({"type": "echo", "colour": "red"}, "colour"),
        ([1, 2], None),
    ],
)
async def test_invalid_fields_are_422_naming_the_field(client, body, field) -> None:
    error = await error_of(await client.post("/api/v1/tasks", json=body), 422)
    assert error.get("field") == field
    assert error["message"]


async def test_unknown_task_type_is_422_listing_known_types(client) -> None:
    error = await error_of(await client.post("/api/v1/tasks", json={"type": "nope"}), 422)
    assert (error["code"], error["field"]) == ("unknown_task_type", "type")
    assert "double" in error["message"]
    assert "email" in error["message"]


async def test_queue_full_is_429_with_retry_after(client, engine: Engine) -> None:
    await engine.pause()
    body = {"tasks": [{"type": "echo"}] * 10}
    for _ in range(5):
        assert (await client.post("/api/v1/tasks/batch", json=body)).status_code == 201
    response = await client.post("/api/v1/tasks", json={"type": "echo"})
    assert (await error_of(response, 429))["code"] == "queue_full"
    assert response.headers["Retry-After"].isdigit()


async def test_body_over_the_limit_is_413(client) -> None:
    body = b'{"type": "echo", "payload": "' + b"x" * (65 * 1024) + b'"}'
    response = await client.post("/api/v1/tasks", data=body, headers=JSON)
    assert (await error_of(response, 413))["code"] == "body_too_large"


async def test_unknown_route_is_404_and_wrong_method_405(client) -> None:
    assert (await error_of(await client.get("/nowhere"), 404))["code"] == "route_not_found"
    error = await error_of(await client.put("/api/v1/tasks"), 405)
    assert error["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=abc", "limit"),
        ("limit=0", "limit"),
        ("status=bogus", "status"),
        ("cursor=x", "cursor"),
    ],
)
async def test_bad_list_queries_are_422(client, query, field) -> None:
    error = await error_of(await client.get(f"/api/v1/tasks?{query}"), 422)
    assert error.get("field") == field


async def test_bad_wait_timeout_is_422(client) -> None:
    task = await (await client.post("/api/v1/tasks", json={"type": "echo"})).get_json()
    error = await error_of(await client.get(f"/api/v1/tasks/{task['id']}/wait?timeout=x"), 422)
    assert error["field"] == "timeout"


async def test_submit_while_shutting_down_is_503(client, engine: Engine) -> None:
    await engine.shutdown(grace=0)
    response = await client.post("/api/v1/tasks", json={"type": "echo"})
    assert (await error_of(response, 503))["code"] == "shutting_down"


async def test_unexpected_error_is_a_json_500_without_details(client, engine, monkeypatch) -> None:
    async def broken() -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(engine, "stats", broken)
    error = await error_of(await client.get("/api/v1/stats"), 500)
    assert error == {"code": "internal_error", "message": "internal server error"}


JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def test_a_result_json_cannot_hold_is_shown_as_its_repr_not_a_500() -> None:
    from oncue.actors import Registry, open_engine, register_builtins
    from oncue.http.app import create_app

    class Thing:
        def __repr__(self) -> str:
            return "<Thing>"

    registry = register_builtins(Registry())

    @registry.task("odd")
    async def odd(ctx, payload):
        return {"thing": Thing(), "n": 1}

    async with open_engine(registry=registry, workers=1) as engine:
        app = create_app(engine)
        async with app.test_app() as test_app:
            client = test_app.test_client()
            created = await (await client.post("/api/v1/tasks", json={"type": "odd"})).get_json()
            waited = await client.get(f"/api/v1/tasks/{created['id']}/wait?timeout=5")
            listed = await client.get("/api/v1/tasks")
    assert waited.status_code == 200
    assert (await waited.get_json())["result"] == {"thing": {"__repr__": "<Thing>"}, "n": 1}
    assert listed.status_code == 200


async def test_batch_errors_name_the_task_they_are_about() -> None:
    from oncue.actors import open_engine
    from oncue.http.app import create_app

    tasks = [{"type": "echo"}, {"type": "echo", "priority": "urgent"}]
    async with open_engine(workers=1) as engine, create_app(engine).test_app() as app:
        client = app.test_client()
        bad_priority = await client.post("/api/v1/tasks/batch", json={"tasks": tasks})
        unknown = await client.post(
            "/api/v1/tasks/batch", json={"tasks": [{"type": "echo"}, {"type": "nope"}]}
        )
    assert bad_priority.status_code == 422
    assert (await bad_priority.get_json())["error"]["field"] == "tasks[1].priority"
    assert (await unknown.get_json())["error"]["field"] == "tasks[1].type"


async def test_any_nesting_depth_is_400_naming_the_limit_or_accepted(tmp_path) -> None:
    """On a durable store (whose admission encodes the payload again): every depth is a 400
    naming the limit or a 201, whatever the server's own stack depth (976-989 levels were a
    500 under Hypercorn)."""
    from oncue.actors import Registry, open_engine
    from oncue.http.app import create_app
    from oncue.http.body import MAX_JSON_DEPTH

    registry = Registry()

    @registry.task("nest")
    async def nest(ctx, payload):
        return payload

    def nested(depth: int) -> bytes:  # the body's own object is the first level
        inner = depth - 1
        return b'{"type": "nest", "payload": ' + b"[" * inner + b"]" * inner + b"}"

    async with open_engine(registry=registry, store=f"sqlite:///{tmp_path}/t.db") as engine:
        app = create_app(engine)
        async with app.test_app() as test_app:
            client = test_app.test_client()
            for path in ("/api/v1/tasks", "/submit", "/api/v1/jobs"):
                accepted = await client.post(path, data=nested(MAX_JSON_DEPTH), headers=JSON)
                assert accepted.status_code < 300, await accepted.get_data()
            for depth in [MAX_JSON_DEPTH + 1, *range(900, 1000), 5000]:
                response = await client.post("/api/v1/tasks", data=nested(depth), headers=JSON)
                error = await error_of(response, 400)
                assert f"deeper than {MAX_JSON_DEPTH} levels" in error["message"], depth


@pytest.mark.parametrize("path", ["/api/v1/tasks", "/api/v1/jobs"])
async def test_a_cursor_past_64_bits_is_422_naming_it(client, path) -> None:
    response = await client.get(path, query_string={"cursor": "99999999999999999999"})
    error = await error_of(response, 422)
    assert error["field"] == "cursor"
    assert "99999999999999999999" in error["message"]


@pytest.mark.parametrize(
    ("backend_error", "said"),
    [
        ("sqlite", "its disk is full"),
        ("redis_oom", "its memory is full"),
        ("read_only", "refuses writes"),
        ("down", "backend is failing"),
    ],
)
def test_an_unavailable_store_says_why_in_words_for_the_client(backend_error, said) -> None:
    """The reason a 503 (and /health) gives names the operator's fix; the backend's own text
    goes to the log only."""
    from oncue.actors import StoreUnavailable
    from oncue.actors.errors import BackendFull, BackendReadOnly, BackendUnavailable
    from oncue.http.errors import unavailable_reason

    error = {
        "sqlite": BackendFull("the disk is full: database or disk is full"),
        "redis_oom": BackendFull("Redis is out of memory: OOM command not allowed"),
        "read_only": BackendReadOnly("PostgreSQL refuses writes (read-only): cannot execute"),
        "down": BackendUnavailable("PostgreSQL: connection refused"),
    }[backend_error]
    reason = unavailable_reason(StoreUnavailable(error))
    assert said in reason
    assert "PostgreSQL" not in reason
    assert "OOM" not in reason
