"""The OpenAPI spec quart-schema builds, completed: every error documented, ids unique, every
`$ref` defined.

Every route can answer the JSON error body (401, 404, 413, 429, 503...), so each operation gets
it as its `default` response; operation ids include the path, so they are unique; `/metrics`
(Prometheus text, not JSON) is described by hand. quart-schema inlines a route's own model and
refers to the models nested in it (`TaskOut` inside `TaskList`) under `#/components/schemas/`,
but keeps only one of msgspec's components: the others are added here, for every model a route
documents (tests/http/test_openapi.py validates the whole document).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import msgspec
from quart import Response, url_for
from quart_schema import hide
from quart_schema.openapi import OpenAPIProvider
from quart_schema.validation import (
    QUART_SCHEMA_QUERYSTRING_ATTRIBUTE,
    QUART_SCHEMA_REQUEST_ATTRIBUTE,
    QUART_SCHEMA_RESPONSE_ATTRIBUTE,
)
from werkzeug.routing import Rule

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
SWAGGER_ASSETS = "/docs/assets"  # Swagger UI's files, served by app.py from the package
REF_TEMPLATE = "#/components/schemas/{name}"  # quart-schema's, for msgspec models


def documented_models(view: Callable[..., Any]) -> list[type]:
    """The msgspec models a view's quart-schema decorators document (body, query, answers)."""
    found: list[Any] = [getattr(view, QUART_SCHEMA_QUERYSTRING_ATTRIBUTE, None)]
    request_data = getattr(view, QUART_SCHEMA_REQUEST_ATTRIBUTE, None)
    if request_data is not None:
        found.append(request_data[0])
    for model, _headers in getattr(view, QUART_SCHEMA_RESPONSE_ATTRIBUTE, {}).values():
        found.append(model)
    return [
        model for model in found if isinstance(model, type) and issubclass(model, msgspec.Struct)
    ]


class ServiceOpenAPI(OpenAPIProvider):
    """quart-schema's provider, with the completions described above."""

    def operation_id(self, method: str, path: str, func: Callable[..., Any]) -> str | None:
        words = re.sub(r"[^A-Za-z0-9]+", "_", path).strip("_")
        return f"{method.lower()}_{words or 'root'}"

    def build_paths(self, rule: Rule) -> tuple[dict[str, Any], dict[str, Any]]:
        paths, components = super().build_paths(rule)
        models = documented_models(self._app.view_functions[rule.endpoint])
        if models:
            _, defined = msgspec.json.schema_components(models, ref_template=REF_TEMPLATE)
            for name, schema in defined.items():
                components.setdefault(name, schema)
        return paths, components

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


DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>oncue API</title>
  <link rel="icon" type="image/png" sizes="32x32" href="{assets}/favicon-32x32.png">
  <link rel="icon" type="image/png" sizes="16x16" href="{assets}/favicon-16x16.png">
  <link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="{assets}/swagger-ui-bundle.js"></script>
  <script>
    SwaggerUIBundle({{
      url: "{spec}",
      dom_id: "#swagger-ui",
      deepLinking: true,
      presets: [SwaggerUIBundle.presets.apis],
      layout: "BaseLayout"
    }});
  </script>
</body>
</html>
"""


@hide
async def docs_page() -> Response:
    """Swagger UI on /openapi.json, as a standards-mode page with its favicon (the assets
    come from the package: see app.py)."""
    page = DOCS_PAGE.format(assets=SWAGGER_ASSETS, spec=url_for("openapi"))
    return Response(page, content_type="text/html; charset=utf-8")
