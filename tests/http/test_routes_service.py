"""Queue control, workers, stats, health, metrics and the OpenAPI docs."""

from __future__ import annotations

import json
import logging
import re

import trio.testing
from log_lines import log_text

from oncue.actors import Engine, TaskState
from oncue.http.hub import LOG_CHECK


async def test_pause_holds_tasks_and_resume_runs_them(client, engine: Engine) -> None:
    response = await client.post("/api/v1/queue/pause")
    assert (await response.get_json()) == {"paused": True}
    task = await (await client.post("/api/v1/tasks", json={"type": "echo"})).get_json()
    await trio.testing.wait_all_tasks_blocked()
    assert (await engine.get(task["id"])).state is TaskState.PENDING
    assert (await (await client.post("/api/v1/queue/resume")).get_json()) == {"paused": False}
    assert (await engine.wait(task["id"])).state is TaskState.COMPLETED


async def test_workers_lists_each_worker(client) -> None:
    workers = (await (await client.get("/api/v1/workers")).get_json())["workers"]
    assert [worker["name"] for worker in workers] == ["worker-1", "worker-2"]
    assert set(workers[0]) == {
        "name", "state", "current_task", "tasks_done", "restarts", "last_error",
    }  # fmt: skip


async def test_put_workers_resizes_the_pool(client) -> None:
    response = await client.put("/api/v1/workers", json={"count": 4})
    assert response.status_code == 200
    assert len((await response.get_json())["workers"]) == 4
    response = await client.put("/api/v1/workers", json={"count": 1})
    assert len((await response.get_json())["workers"]) == 1


async def test_put_workers_rejects_a_bad_count(client) -> None:
    for body in ({"count": -1}, {"count": "two"}, {}):
        response = await client.put("/api/v1/workers", json=body)
        assert response.status_code == 422
        assert (await response.get_json())["error"]["field"] == "count"


async def test_stats_counts_by_state(client, engine: Engine) -> None:
    task = await (await client.post("/api/v1/tasks", json={"type": "echo"})).get_json()
    await engine.wait(task["id"])
    stats = await (await client.get("/api/v1/stats")).get_json()
    assert (stats["successful"], stats["queue_length"], stats["paused"]) == (1, 0, False)
    assert stats["by_type"]["echo"]["completed"] == 1


async def test_stats_count_the_waiting_tasks_by_priority(client, engine: Engine) -> None:
    await client.post("/api/v1/queue/pause")
    for priority in ("low", "high", "high", 9):
        await client.post("/api/v1/tasks", json={"type": "echo", "priority": priority})
    stats = await (await client.get("/api/v1/stats")).get_json()
    assert stats["queued_by_priority"] == {"9": 1, "2": 2, "0": 1}
    assert list(stats["queued_by_priority"]) == ["9", "2", "0"]  # highest first
    assert stats["queue_length"] == 4
    await client.post("/api/v1/queue/resume")
    await engine.wait_idle()
    stats = await (await client.get("/api/v1/stats")).get_json()
    assert stats["queued_by_priority"] == {}


async def test_health_is_ok_then_503_while_shutting_down(client, engine: Engine) -> None:
    for path in ("/health", "/api/v1/health"):
        response = await client.get(path)
        body = await response.get_json()
        assert (response.status_code, body["status"]) == (200, "ok")
        assert set(body) == {"status", "timestamp", "workers", "queue_depth", "queue"}
        assert body["queue"] == {"size": 0, "closed": False}
    await engine.shutdown(grace=0)
    response = await client.get("/health")
    body = await response.get_json()
    assert (response.status_code, body["status"], body["queue"]["closed"]) == (
        503,
        "shutting_down",
        True,
    )


async def test_metrics_are_prometheus_text(client) -> None:
    await client.get("/health")
    response = await client.get("/metrics")
    text = (await response.get_data()).decode()
    assert response.content_type.startswith("text/plain")
    assert 'oncue_http_requests_total{method="GET",route="/health",status="200"} 1.0' in text
    assert "oncue_queue_depth 0.0" in text
    assert "oncue_workers 2.0" in text


async def test_metrics_gauge_the_waiting_tasks_by_priority(client, engine: Engine) -> None:
    await client.post("/api/v1/queue/pause")
    for priority in ("high", "high", "low"):
        await client.post("/api/v1/tasks", json={"type": "echo", "priority": priority})
    text = (await (await client.get("/metrics")).get_data()).decode()
    assert 'oncue_queue_depth_by_priority{priority="2"} 2.0' in text
    assert 'oncue_queue_depth_by_priority{priority="0"} 1.0' in text
    await client.post("/api/v1/queue/resume")
    await engine.wait_idle()
    text = (await (await client.get("/metrics")).get_data()).decode()
    assert "oncue_queue_depth_by_priority{" not in text  # none waiting: no series left


async def test_metrics_count_made_up_methods_as_one_series(client) -> None:
    for method in ("BREW", "WHEN", "BREW"):
        await client.open("/health", method=method)
    text = (await (await client.get("/metrics")).get_data()).decode()
    assert 'oncue_http_requests_total{method="other",route="unmatched",status="405"} 3.0' in text
    assert "BREW" not in text


async def test_task_metrics_and_log_are_fed_by_the_app_itself(
    autojump_clock, client, caplog
) -> None:
    """No serve(): the app's lifespan (here the test client's test_app) follows the engine for
    the task log, and /metrics reads the engine's tally."""
    caplog.set_level(logging.INFO, logger="oncue.task")
    await trio.sleep(LOG_CHECK)  # the hub notices the task log wants events, and subscribes
    done = await (
        await client.post("/api/v1/tasks", json={"type": "double", "payload": 2})
    ).get_json()
    failing = {"type": "fail", "payload": "on purpose", "max_retries": 1}
    failed = await (await client.post("/api/v1/tasks", json=failing)).get_json()
    for task in (done, failed):
        await client.get(f"/api/v1/tasks/{task['id']}/wait", query_string={"timeout": 60})
    await trio.testing.wait_all_tasks_blocked()
    text = (await (await client.get("/metrics")).get_data()).decode()
    for type_, event, count in [
        ("double", "created", 1),
        ("double", "completed", 1),
        ("fail", "created", 1),
        ("fail", "retried", 1),
        ("fail", "failed", 1),
    ]:
        assert f'oncue_tasks_total{{event="{event}",type="{type_}"}} {count:.1f}' in text
    assert 'oncue_task_duration_seconds_count{type="double"} 1.0' in text
    assert 'oncue_task_duration_seconds_count{type="fail"} 2.0' in text  # both attempts
    log = log_text(caplog.records)
    assert f"event=task.completed task_id={done['id']} task_type=double worker=worker-" in log


async def test_openapi_spec_describes_the_api(client) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    assert spec["openapi"].startswith("3.1")
    assert {"/api/v1/tasks", "/api/v1/tasks/{task_id}", "/api/v1/workers"} <= set(spec["paths"])
    submit = spec["paths"]["/api/v1/tasks"]["post"]
    assert "requestBody" in submit
    assert "201" in submit["responses"]
    wait_many = spec["paths"]["/api/v1/tasks/wait"]["post"]
    assert "ids" in json.dumps(wait_many["requestBody"]) + json.dumps(spec["components"])
    assert "200" in wait_many["responses"]


async def test_openapi_spec_documents_every_route_and_its_answer(client) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    documented = {
        (method.upper(), path)
        for path, operations in spec["paths"].items()
        for method in operations
    }
    served = {
        (method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
        for rule in client.app.url_map.iter_rules()
        # the dashboard's page and files are not API (docs/dashboard.md)
        if not rule.rule.startswith(("/docs", "/openapi.json", "/dashboard/")) and rule.rule != "/"
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert served == documented
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            successes = [
                answer for code, answer in operation["responses"].items() if code.startswith("2")
            ]
            assert any("content" in answer for answer in successes), (method, path)
    job = spec["paths"]["/api/v1/jobs/{task_id}"]["get"]["responses"]["200"]
    assert {"job_id", "completed_at"} <= set(
        job["content"]["application/json"]["schema"]["properties"]
    )


async def test_docs_serve_swagger_ui_from_the_package(client) -> None:
    page = (await (await client.get("/docs")).get_data()).decode()
    assert "/docs/assets/swagger-ui-bundle.js" in page
    assert "https://" not in page
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        response = await client.get(f"/docs/assets/{asset}")
        assert response.status_code == 200
        assert len(await response.get_data()) > 1000
    assert (await client.get("/docs/assets/../pyproject.toml")).status_code == 404
