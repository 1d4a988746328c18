"""The OpenAPI document is valid as a whole (every `$ref` resolves), `/docs` is a proper page
with its favicon, and the public routes the docs name are the ones the code serves openly."""

from __future__ import annotations

import re
from pathlib import Path

from openapi_spec_validator import validate
from quart.typing import TestClientProtocol as Client

from oncue.actors import Engine
from oncue.http.app import create_app
from oncue.http.auth import ALWAYS_PUBLIC, HEALTH_PATHS, AuthSettings, parse_api_tokens

DOCS = Path(__file__).parents[2] / "docs"


async def test_the_openapi_document_validates_and_every_ref_resolves(client: Client) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    validate(spec)  # raises on any invalid part, and on a $ref pointing nowhere
    text = str(spec)
    referenced = set(re.findall(r"#/components/schemas/(\w+)", text))
    assert referenced <= set(spec["components"]["schemas"])
    for name in ("TaskOut", "TaskIn", "JobOut", "ErrorBody", "WorkerOut", "HealthQueue"):
        assert name in referenced, name


async def test_docs_is_a_standards_mode_page_with_its_favicon(client: Client) -> None:
    response = await client.get("/docs")
    page = (await response.get_data()).decode()
    assert page.startswith("<!DOCTYPE html>")
    assert response.headers["Content-Type"].startswith("text/html")
    icons = re.findall(r'<link rel="icon"[^>]* href="([^"]+)"', page)
    assert icons
    for icon in icons:
        favicon = await client.get(icon)
        assert favicon.status_code == 200
        assert favicon.headers["Content-Type"] == "image/png"
        assert (await favicon.get_data()).startswith(b"\x89PNG")
    assert 'url: "/openapi.json"' in page


async def test_every_public_route_is_open_and_named_so_in_the_docs(engine: Engine) -> None:
    settings = AuthSettings(api_tokens=parse_api_tokens("alice:alice-token"))
    app = create_app(engine, auth=settings)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        for path in (*HEALTH_PATHS, *ALWAYS_PUBLIC):
            assert (await client.get(path)).status_code == 200, path
        assert (await client.get("/api/v1/stats")).status_code == 401
    for doc in ("http.md", "security.md"):
        text = " ".join((DOCS / doc).read_text().split())
        # "every route needs a token ... except `/health`, ...": the list of the open ones
        (exceptions,) = re.findall(r"every route[^.]*?except ([^;|]*)", text)
        for path in (*HEALTH_PATHS, *ALWAYS_PUBLIC):
            assert f"`{path}`" in exceptions, (doc, path, exceptions)
