"""The OpenAPI spec quart-schema builds, completed: every error documented, ids unique.

Every route can answer the JSON error body (401, 404, 413, 429, 503...), so each operation gets
it as its `default` response; operation ids include the path, so they are unique; `/metrics`
(Prometheus text, not JSON) is described by hand.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from quart_schema.openapi import OpenAPIProvider

METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
            },
        }
    },
}
DEFAULT_RESPONSE = {
    "description": "An error: {error: {code, message, field?}}",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
METRICS_OPERATION = {
    "operationId": "get_metrics",
    "summary": "Prometheus metrics: tasks by type and outcome, durations, queue, HTTP requests",
    "responses": {
        "200": {
            "description": "The Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
}
NO_CONTENT = {"description": "A finished task was forgotten"}
# The event stream (http/routes_events.py; its Quart view is hidden): SSE, not JSON.
EVENTS_OPERATION = {
    "operationId": "get_api_v1_events",
    "summary": "Task transitions as Server-Sent Events (docs/http.md): event: task, actor"
    " (admins), reset, dropped, end; filters task, type, status; resume with Last-Event-ID",
    "parameters": [
        {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
        for name in ("task", "type", "status")
    ],
    "responses": {
        "200": {
            "description": "An endless text/event-stream",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    },
}


class ServiceOpenAPI(OpenAPIProvider):
    """quart-schema's provider, with the completions described above."""

    def operation_id(self, method: str, path: str, func: Callable[..., Any]) -> str | None:
        words = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
        return f"{method.lower()}_{words or 'root'}"

    def schema(self) -> dict[str, Any]:
        spec: dict[str, Any] = super().schema()
        spec["paths"]["/metrics"] = {"get": METRICS_OPERATION}
        spec["paths"]["/api/v1/events"] = {"get": EVENTS_OPERATION}
        spec["components"]["schemas"]["Error"] = ERROR_SCHEMA
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                if method not in METHODS:
                    continue
                # quart-schema keys responses by int; JSON keys are strings anyway
                responses = {
                    str(code): item for code, item in operation.get("responses", {}).items()
                }
                operation["responses"] = responses
                responses.setdefault("default", DEFAULT_RESPONSE)
                if method == "delete" and path.endswith("{task_id}"):
                    responses.setdefault("204", NO_CONTENT)
        return spec
